"""Prophet detector: points outside a Prophet forecast band, scored in band half-widths.

Trainable: ``fit`` keeps the fitted model (Prophet's JSON) and the noise scale
(``prophet_state.py``), and ``detect_next`` scores new points against that model's forecast
without refitting.

Imports prophet (and pandas, cmdstanpy, holidays) only inside ``detect``, ``fit`` and the country
check, and scoring with a state imports no prophet at all (pandas, and holidays for a country):
listing algorithms must stay light. Never writes to stdout: prophet's and cmdstanpy's loggers are
quietened to warnings (which go wherever logging sends them, stderr in the CLI), and cmdstan's own
console output is captured by cmdstanpy into a file, never onto this process's stdout.
"""

from __future__ import annotations

import logging
import warnings
from statistics import NormalDist
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    InvalidInput,
)
from warden_algos.interfaces.errors import IncompatibleState
from warden_algos.interfaces.streaming import continuing_flags, still_open
from warden_algos.interfaces.trainable import TrainableDetector

from .prophet_state import ProphetModel, ProphetState, compact_model_json, supported_countries

#: Fewer valid points than this and the detector has no opinion (no fit, NaN band).
MIN_FIT_POINTS = 10
#: Seed of the Stan optimiser (L-BFGS from Prophet's deterministic start; the seed only matters
#: if Stan has to draw anything, but fixing it keeps two runs identical by construction).
STAN_SEED = 20240601

_LARGEST = float(np.finfo(np.float64).max)
_TINY = float(np.finfo(np.float64).tiny)
#: The instants pandas (and so Prophet) can represent, in Unix seconds: 1677-09-22 to 2262-04-11.
_FIRST_SECOND, _LAST_SECOND = -9_223_372_036, 9_223_372_036

Seasonality = Literal["auto", True, False]


class ProphetParams(DetectorParams):
    interval_width: float = Field(
        0.99,
        gt=0,
        lt=1,
        description="Coverage of the band (Prophet's interval_width): the band is expected ± "
        "the normal quantile of (1 + interval_width) / 2 times the observation noise.",
    )
    margin: float = Field(
        0.7,
        ge=0,
        le=1000,
        description="Flag a point only when it lies more than this many band half-widths "
        "outside the band (0: every point outside the band is flagged).",
    )
    daily_seasonality: Seasonality = Field(
        "auto",
        description='Fit a daily cycle: true, false, or "auto" (on when the series spans at '
        "least 2 days at sub-daily spacing).",
    )
    weekly_seasonality: Seasonality = Field(
        "auto",
        description='Fit a weekly cycle: true, false, or "auto" (on when the series spans at '
        "least 2 weeks at sub-weekly spacing).",
    )
    yearly_seasonality: Seasonality = Field(
        "auto",
        description='Fit a yearly cycle: true, false, or "auto" (on when the series spans at '
        "least 2 years).",
    )
    country_holidays: str | None = Field(
        None,
        description="ISO 3166 country code (e.g. US, GB, DE, FRA) whose public holidays get their "
        "own effects (Prophet's add_country_holidays); null for none.",
    )
    changepoint_prior_scale: float = Field(
        0.05,
        gt=0,
        le=100,
        description="Flexibility of the piecewise-linear trend: larger lets the trend follow "
        "level changes (and absorb them), smaller keeps it stiff.",
    )
    seasonality_mode: Literal["additive", "multiplicative"] = Field(
        "additive",
        description="Whether the seasonal cycles add to the trend or scale with it.",
    )
    max_fit_points: int = Field(
        2000,
        ge=MIN_FIT_POINTS,
        le=1_000_000,
        description="Fit on at most this many points: a longer series is averaged into this many "
        "equal time bins before fitting (the fit time grows quickly with the point count), and "
        "the forecast is still made for every timestamp. Bins must stay well below a day for a "
        "daily cycle to survive the averaging.",
    )

    outlier_sigmas: float | None = Field(
        4.0,
        ge=1,
        le=1000,
        description="After a first fit, drop the fit points whose residual exceeds this many "
        "root-mean-square residuals and fit again, so that anomalies do not bend the forecast "
        "(the second fit is skipped when nothing is dropped); null fits once, in half the time.",
    )

    @field_validator("daily_seasonality", "weekly_seasonality", "yearly_seasonality", mode="before")
    @classmethod
    def _auto_or_boolean(cls, switch: object) -> object:
        # Literal[True] alone would take 1 as true, but Prophet reads a number as a Fourier order.
        if isinstance(switch, bool) or switch == "auto":
            return switch
        raise ValueError(f'must be "auto", true or false, got {switch!r}')

    @field_validator("country_holidays")
    @classmethod
    def _known_country(cls, code: str | None) -> str | None:
        if code is None:
            return None
        code = code.strip().upper()
        if code not in _supported_countries():
            raise ValueError(
                f"no holiday calendar for country code {code!r}; use an ISO 3166 code such as "
                "'US', 'GB', 'DE' or 'FRA'"
            )
        return code


def _supported_countries() -> frozenset[str]:
    return supported_countries()


class ProphetDetector(TrainableDetector[ProphetParams, ProphetState]):
    """Fits Prophet (piecewise-linear trend + daily/weekly/yearly Fourier seasonality, optionally
    a country's public holidays) to the series and flags the points that lie outside its band,
    scored by their distance outside the band in band half-widths. Returns the forecast
    (``expected``) and the ``interval_width`` band (``lower``, ``upper``) for every timestamp.

    Use it for metrics driven by human calendars: traffic, sales, sign-ups, taxi rides, anything
    with daily and weekly cycles, holiday effects and slow trend changes, where a rolling baseline
    would flag every daily peak. It fits the whole series at once (the fit sees each point's
    future), so it suits batch scans of a stretch of history rather than a streaming decision on
    the latest point. Avoid it for series shorter than a few cycles, series whose level keeps
    jumping (the trend bends to follow or mis-fits the jumps), and anything latency-bound: it is
    the slowest built-in detector.

    Fitting: Prophet's MAP fit (Stan L-BFGS, seeded, ``mcmc_samples=0``) on at most
    ``max_fit_points`` points; a longer series is first averaged into that many equal time bins.
    With ``outlier_sigmas`` (default 4), the fit points further than that many RMS residuals from
    the first fit are dropped and the model is fitted again, so that the anomalies do not bend the
    forecast. The forecast is then made for every timestamp, missing ones included.

    The band: expected ± z·sigma, z being the normal quantile of (1 + ``interval_width``) / 2 and
    sigma the observation noise, estimated as the RMS of the residuals of every valid point (the
    point-level noise even when the fit ran on bin averages). This is Prophet's own interval inside
    the fitted history (where its trend uncertainty is zero) computed exactly instead of by
    Monte-Carlo simulation, which is slow. A point is flagged when it lies more than ``margin``
    half-widths outside the band; with the defaults (0.99, 0.7) that is about 4.4 sigma.

    Cost, measured on one core over the 31 NAB series (up to 22,700 points, 57 fits): about 1 s
    to import prophet once per process, then 0.22 s per fit (median; 0.46 s max) at 2,000 fit
    points, up to two fits per call, plus 0.02 s to forecast. Fit time grows faster than the
    point count: about 0.5 s at 4,000 points and 8 s at 22,000.

    Missing values (NaN) are left out of the fit, still get a forecast and band, and are never
    flagged. With fewer than 10 valid points there is no fit: no detections and a NaN band.

    Trainable: ``fit`` fits as above on the history and keeps the model (Prophet's own JSON,
    without its training rows) and sigma; ``detect_next`` scores new points with that model's
    forecast, exactly as above, without refitting (milliseconds instead of seconds). The model
    never changes while scoring, so new points get the same band however they are chunked; fit
    again (on a recent history) to follow changes. Beyond the fitted history the band keeps the
    fitted noise and leaves out Prophet's trend uncertainty (which grows with the horizon), so
    fit often enough that the trend has not drifted. Not causal: a batch ``detect`` fits on every
    point it is given, a stream does not, so their detections differ.
    """

    name = "prophet"
    summary = "Prophet trend + seasonality (+ holidays) forecast; flags points outside its band."
    causal: ClassVar[bool] = False

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        valid = ~np.isnan(values)
        if int(np.count_nonzero(valid)) < MIN_FIT_POINTS:
            return _no_opinion(timestamps, p.every_point)
        _check_range(timestamps)
        fit_times, fit_values = _fit_points(timestamps[valid], values[valid], p.max_fit_points)
        expected = _robust_forecast(p, fit_times, fit_values, timestamps.astype(np.float64))
        sigma = _sigma(values, valid, expected)
        scored = _scored(p, values, expected, sigma)
        return DetectResult.from_flags(
            timestamps,
            scored.is_anomaly,
            scored.scores,
            every_point=p.every_point,
            expected=scored.expected,
            lower=scored.lower,
            upper=scored.upper,
        )

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> ProphetState:
        """Fit as ``detect`` does and keep the model and sigma (no model below 10 valid
        points: new points then get no opinion)."""
        p = self.params
        valid = ~np.isnan(values)
        if int(np.count_nonzero(valid)) < MIN_FIT_POINTS:
            return ProphetState()
        _check_range(timestamps, "fit.timestamps")
        import pandas as pd

        fit_times, fit_values = _fit_points(timestamps[valid], values[valid], p.max_fit_points)
        model = _robust_model(pd, p, fit_times, fit_values)
        expected = _predict(pd, model, timestamps.astype(np.float64))
        sigma = _sigma(values, valid, expected)
        scored = _scored(p, values, expected, sigma)
        return ProphetState(
            model_json=compact_model_json(model),
            sigma=sigma,
            open_incident=still_open(scored.is_anomaly, False),
        )

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: ProphetState
    ) -> tuple[DetectResult, ProphetState]:
        """Score new points against the fitted model's forecast and band; the state after
        differs only in whether an incident is open."""
        p = self.params
        model = state.model
        if model is None or state.sigma is None or values.shape[0] == 0:
            return _no_opinion(timestamps, p.every_point), state
        _check_fitted_with(model, p)
        _check_range(timestamps)
        scored = _scored(p, values, model.predict(timestamps), state.sigma)
        result = continuing_flags(
            timestamps,
            scored.is_anomaly,
            scored.scores,
            state.open_incident,
            every_point=p.every_point,
            expected=scored.expected,
            lower=scored.lower,
            upper=scored.upper,
        )
        is_open = still_open(scored.is_anomaly, state.open_incident)
        return result, state.model_copy(update={"open_incident": is_open})


class _Scored(NamedTuple):
    is_anomaly: npt.NDArray[np.bool_]
    scores: F64Array
    expected: F64Array
    lower: F64Array
    upper: F64Array


def _no_opinion(timestamps: I64Array, every_point: bool) -> DetectResult:
    n = timestamps.shape[0]
    no_opinion = np.full(n, np.nan)
    return DetectResult.from_flags(
        timestamps,
        np.zeros(n, dtype=bool),
        np.zeros(n),
        every_point=every_point,
        expected=no_opinion,
        lower=no_opinion.copy(),
        upper=no_opinion.copy(),
    )


def _check_range(timestamps: I64Array, field: str = "detect.timestamps") -> None:
    if timestamps.shape[0] and (timestamps[0] < _FIRST_SECOND or timestamps[-1] > _LAST_SECOND):
        raise InvalidInput(
            "prophet handles timestamps from 1677-09-22 to 2262-04-11 only (pandas' range)",
            field=field,
        )


def _check_fitted_with(model: ProphetModel, p: ProphetParams) -> None:
    """The SDK matched the state's recorded params to these; the model inside must agree."""
    if model.seasonality_mode != p.seasonality_mode or model.country != p.country_holidays:
        raise IncompatibleState(
            "the state's prophet model was not fitted with the params it records "
            "(seasonality_mode or country_holidays differ): fit again",
            field="state",
        )


def _sigma(values: F64Array, valid: npt.NDArray[np.bool_], expected: F64Array) -> float:
    """The observation noise the band is drawn with: the RMS residual of the valid points."""
    with np.errstate(all="ignore"):  # overflow on huge values is dealt with by the clip
        residual = np.clip(values - expected, -_LARGEST, _LARGEST)
        sigma = _noise_scale(residual[valid])
        level = float(np.max(np.abs(values[valid])))
    # A perfect fit (constant series) leaves no noise: floor sigma relative to the scale so
    # rounding errors are not anomalies but any real departure is.
    return max(sigma, 1e-9 * level, _TINY)


def _scored(p: ProphetParams, values: F64Array, expected: F64Array, sigma: float) -> _Scored:
    """Flags, scores (half-widths outside the band) and the band of each point; ``expected`` is
    reused as the band's centre."""
    with np.errstate(all="ignore"):  # overflow on huge values is dealt with below
        residual = np.clip(values - expected, -_LARGEST, _LARGEST)
        half_width = NormalDist().inv_cdf((1.0 + p.interval_width) / 2.0) * sigma
        lower = expected - half_width
        upper = expected + half_width
        outside = np.abs(residual)
        outside -= half_width
        outside /= half_width
    is_anomaly = outside > p.margin  # NaN (missing value) compares False
    scores = np.nan_to_num(np.maximum(outside, 0.0), nan=0.0, posinf=_LARGEST)
    for band in (expected, lower, upper):
        band[np.isinf(band)] = np.nan
    return _Scored(is_anomaly, scores, expected, lower, upper)


def _noise_scale(residuals: F64Array) -> float:
    """Root mean square of the residuals (the ML estimate of the observation noise), computed
    without overflow however large they are."""
    largest = float(np.max(np.abs(residuals), initial=0.0))
    if largest == 0.0:
        return 0.0
    return largest * float(np.sqrt(np.mean(np.square(residuals / largest))))


def _fit_points(
    timestamps: I64Array, values: F64Array, max_points: int
) -> tuple[F64Array, F64Array]:
    """The (time, value) points to fit on: the valid points themselves, or, when there are more
    than ``max_points``, their averages over ``max_points`` equal time bins (empty bins dropped;
    each bin is placed at the mean time of its points, so the times stay strictly increasing)."""
    times = timestamps.astype(np.float64)
    if values.shape[0] <= max_points:
        return times, values.astype(np.float64, copy=True)
    start = times[0]
    width = (times[-1] - start) / max_points
    bins = np.minimum(((times - start) / width).astype(np.int64), max_points - 1)
    counts = np.bincount(bins, minlength=max_points).astype(np.float64)
    # Average relative to the first point's value and time so huge levels keep their precision.
    offset = values[0]
    time_sums = np.bincount(bins, weights=times - start, minlength=max_points)
    value_sums = np.bincount(bins, weights=values - offset, minlength=max_points)
    used = counts > 0
    return (
        start + time_sums[used] / counts[used],
        offset + value_sums[used] / counts[used],
    )


def _robust_forecast(
    p: ProphetParams, fit_times: F64Array, fit_values: F64Array, predict_times: F64Array
) -> F64Array:
    """The forecast at ``predict_times`` of :func:`_robust_model`."""
    import pandas as pd

    return _predict(pd, _robust_model(pd, p, fit_times, fit_values), predict_times)


def _robust_model(pd: Any, p: ProphetParams, fit_times: F64Array, fit_values: F64Array) -> Any:
    """A fit that, with ``outlier_sigmas``, leaves out the points a first fit could not
    explain."""
    model = _fit_prophet(pd, p, fit_times, fit_values)
    if p.outlier_sigmas is not None:
        with np.errstate(all="ignore"):
            residual = fit_values - _predict(pd, model, fit_times)
            np.abs(residual, out=residual)
            np.minimum(residual, _LARGEST, out=residual)
            keep = residual <= p.outlier_sigmas * _noise_scale(residual)
        kept = int(np.count_nonzero(keep))
        if MIN_FIT_POINTS <= kept < keep.shape[0]:
            model = _fit_prophet(pd, p, fit_times[keep], fit_values[keep])
    return model


def _fit_prophet(pd: Any, p: ProphetParams, times: F64Array, values: F64Array) -> Any:
    """A Prophet model fitted (MAP, seeded) to the points (times, values)."""
    prophet_cls = _import_prophet()
    model = prophet_cls(
        growth="linear",
        changepoint_prior_scale=p.changepoint_prior_scale,
        seasonality_mode=p.seasonality_mode,
        daily_seasonality=p.daily_seasonality,
        weekly_seasonality=p.weekly_seasonality,
        yearly_seasonality=p.yearly_seasonality,
        interval_width=p.interval_width,
        mcmc_samples=0,
        uncertainty_samples=0,  # the band is computed analytically by the caller
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if p.country_holidays is not None:
            model.add_country_holidays(country_name=p.country_holidays)
        try:
            model.fit(pd.DataFrame({"ds": _to_datetimes(pd, times), "y": values}), seed=STAN_SEED)
        finally:
            # The fitted parameters are in memory now; cmdstanpy would keep its output files
            # until the process exits, and a serving process would accumulate them.
            backend: Any = getattr(model, "stan_backend", None)
            if backend is not None:
                backend.cleanup()
    return model


def _predict(pd: Any, model: Any, times: F64Array) -> F64Array:
    """The fitted model's ``yhat`` at ``times``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast = model.predict(pd.DataFrame({"ds": _to_datetimes(pd, times)}))
    expected: F64Array = forecast["yhat"].to_numpy(dtype=np.float64, copy=True)
    return expected


def _to_datetimes(pd: Any, seconds: F64Array) -> Any:
    """Unix seconds (UTC) to naive pandas datetimes, as Prophet wants them."""
    return pd.Series(pd.to_datetime(np.round(seconds * 1e9).astype(np.int64), unit="ns"))


def _import_prophet() -> Any:
    """Import Prophet with its chatter silenced (idempotent; the settings are per-logger).

    prophet.plot logs an error when plotly is missing, prophet and cmdstanpy log INFO lines on
    every fit. None of it goes to stdout by default, but it is noise on stderr for every request.
    Without the ``prophet`` extra, the request gets an error naming it.
    """
    from warden_algos.extras import require

    require("prophet", what="the prophet algorithm")
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    from cmdstanpy.utils import get_logger  # it sets cmdstanpy's level on its first call
    from prophet import Prophet  # prophet sets its own logger to INFO on import: override after

    get_logger()
    logging.getLogger("prophet").setLevel(logging.WARNING)
    logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
    return Prophet

"""The prophet detector's trained state: the fitted model as Prophet's own JSON, read back into
the numbers its forecast needs (parsed, never executed), and the forecast computed from them.

Why Prophet's JSON (``prophet.serialize.model_to_json``): it is Prophet's own safe format (plain
JSON, no pickle), so a stored model can also be opened with ``model_from_json`` by anyone who
wants to inspect it. It is trimmed before it is stored: ``model_to_json`` also writes the training
frame (``history``, ``history_dates`` and the fitted ``trend`` at every fit point), up to
``max_fit_points`` rows that forecasting never reads. They would make the state ~320 KB at the
default 2,000 fit points, and past the state header's 1 MiB limit from about 6,000; only the
first and last fit points are kept, so the JSON still loads in Prophet (and forecasts exactly as
the full model does) and records the span it was fitted on, and the state is a few KB whatever
the history (8 KB by default, 26 KB with a country's holidays).

Why not Prophet's ``predict``: ``model_from_json`` and ``predict`` build DataFrames, about 80 ms
even for one new point, which would make streaming one point only ~5x faster than a stateless
call that refits. The forecast of a fitted model is a closed-form function of its parameters
(piecewise-linear trend, Fourier seasonality, holiday indicators), computed here with Prophet's
own arithmetic (tests check it reproduces ``predict`` to 1e-9) in well under a millisecond. Each
point is computed on its own, never with a sum across the points sent with it, so scoring new
points one at a time or all at once gives the same bytes (country holidays come from each point's
own year's calendar, as ``predict`` does one point at a time).

Reading a model checks what the computation relies on; a state that breaks it gets a structured
error at load: ``INVALID_INPUT`` for a model that is not Prophet JSON or lacks what a fitted model
has, ``INCOMPATIBLE_STATE`` for one written by another major version of Prophet or using features
this detector never fits (logistic growth, extra regressors, MCMC samples, ...).
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Json,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from warden_algos.interfaces import F64Array, I64Array, InvalidInput
from warden_algos.interfaces.errors import IncompatibleState
from warden_algos.interfaces.state import AlgorithmState

#: Bound of the stored model JSON. A trimmed model is a few KB (25 changepoints, a few dozen
#: seasonality and holiday coefficients); the bound keeps it well inside the state's header
#: (1 MiB, JSON-escaped), whatever a crafted state holds.
MAX_MODEL_JSON_CHARS = 256 * 1024
#: Bound of a model's features and changepoints. A fitted model has a few dozen features (8 daily,
#: 6 weekly, 20 yearly, one per holiday) and 25 changepoints; a crafted one may not make scoring a
#: point cost more than this.
MAX_TERMS = 5_000
#: Elements of the largest temporary array a forecast builds (32 MB): longer requests are
#: forecast block by block.
_BLOCK_ELEMENTS = 1 << 22
_NS_PER_DAY = 86_400_000_000_000
_EPOCH_DATE = datetime.date(1970, 1, 1)


# The part of Prophet's JSON the forecast reads, as it is written (other keys are ignored) ---------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Seasonality(_Loose):
    period: float = Field(gt=0)
    fourier_order: int = Field(ge=1, le=10_000)
    mode: Literal["additive", "multiplicative"]
    condition_name: str | None = None


class _SeriesJson(_Loose):
    """A pandas Series as ``to_json(orient="split")``: only its values matter here."""

    data: list[str]


class _TableJson(_Loose):
    """A pandas DataFrame as ``to_json(orient="table", index=False)``: one dict per row."""

    data: list[dict[str, int]]


class _ModelJson(_Loose):
    prophet_version: str = Field(alias="__prophet_version")
    growth: str
    scaling: str
    y_scale: float
    y_min: float | None
    logistic_floor: bool
    start: float
    t_scale: float
    mcmc_samples: int
    seasonality_mode: str
    country_holidays: str | None
    holidays: str | None
    changepoints_t: list[float]
    seasonalities: tuple[list[str], dict[str, _Seasonality]]
    extra_regressors: tuple[list[str], dict[str, Any]]
    train_holiday_names: Json[_SeriesJson] | None
    train_component_cols: Json[_TableJson]
    params: dict[str, list[list[float]]]


@dataclass(frozen=True, eq=False)
class ProphetModel:
    """What forecasting with a fitted model needs, read from its JSON (``source``). Two models
    are equal when their JSON is."""

    source: str = field(repr=False)
    prophet_version: str
    seasonality_mode: str
    country: str | None
    start_ns: int
    t_scale_ns: float
    y_scale: float
    floor: float
    k: float
    m: float
    deltas: F64Array
    changepoints_t: F64Array
    #: (period in days, Fourier order) of each seasonality, in the feature matrix's order.
    seasonalities: tuple[tuple[float, int], ...]
    #: The holidays of the feature matrix's columns after the seasonalities, in their order.
    holidays: tuple[str, ...]
    beta: F64Array  # (1, columns)
    additive: F64Array  # (columns,) 1 where the column is an additive term
    multiplicative: F64Array

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProphetModel) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    @property
    def columns(self) -> int:
        return int(self.beta.shape[1])

    def predict(self, timestamps: I64Array) -> F64Array:
        """``yhat`` at ``timestamps`` (Unix seconds), as ``Prophet.predict`` computes it."""
        # The datetimes Prophet is given (prophet_forecast._to_datetimes), in nanoseconds.
        ns = np.round(timestamps.astype(np.float64) * 1e9).astype(np.int64)
        rows = max(1, _BLOCK_ELEMENTS // (self.columns + self.changepoints_t.shape[0]))
        if ns.shape[0] <= rows:
            return self._predict(ns)
        return np.concatenate(
            [self._predict(ns[i : i + rows]) for i in range(0, ns.shape[0], rows)]
        )

    def _predict(self, ns: I64Array) -> F64Array:
        """``yhat`` at the datetimes ``ns`` (nanoseconds since the epoch)."""
        # setup_dataframe: t = (ds - start) / t_scale; predict_trend: piecewise linear.
        t = (ns - self.start_ns).astype(np.float64) / self.t_scale_ns
        cp = self.changepoints_t
        deltas_t = (cp[None, :] <= t[..., None]) * self.deltas
        k_t = deltas_t.sum(axis=1) + self.k
        m_t = (deltas_t * -cp).sum(axis=1) + self.m
        trend = (k_t * t + m_t) * self.y_scale + self.floor
        # predict_seasonal_components: X @ (beta * component column), additive terms rescaled.
        # Row by row (a sum per row, not a BLAS product whose blocking depends on the row count),
        # so that a point's forecast does not depend on the points sent with it.
        features = self._features(ns)
        additive = (features * (self.beta * self.additive)).sum(axis=1)
        additive *= self.y_scale
        multiplicative = (features * (self.beta * self.multiplicative)).sum(axis=1)
        yhat: F64Array = trend * (1 + multiplicative) + additive
        return yhat

    def _features(self, ns: I64Array) -> F64Array:
        """Prophet's feature matrix (make_all_seasonality_features) at the datetimes ``ns``."""
        features = np.zeros((ns.shape[0], self.columns))
        # fourier_series: days since the epoch, then sin and cos of each harmonic.
        x_t = np.pi * 2 * ((ns / 1_000_000_000) / (24 * 60 * 60))
        column = 0
        for period, order in self.seasonalities:
            for i in range(order):
                c = (i + 1) / period * x_t
                features[:, column] = np.sin(c)
                features[:, column + 1] = np.cos(c)
                column += 2
        if self.holidays and self.country is not None and ns.shape[0]:
            days = ns // _NS_PER_DAY  # the (UTC) dates, as make_holiday_features matches them
            years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
            for year in np.unique(years):
                rows = years == year
                calendar = holiday_calendar(self.country, int(year))
                for offset, name in enumerate(self.holidays):
                    on = calendar.get(name)
                    if on is not None:
                        features[rows, column + offset] = np.isin(days[rows], on)
        return features


def read_model(text: str) -> ProphetModel:
    """The forecasting model of a Prophet JSON ``text``, checked: ``INVALID_INPUT`` if it is not
    a fitted Prophet model's JSON, ``INCOMPATIBLE_STATE`` if this detector cannot forecast with
    it (another Prophet major version, features it never fits). Needs the ``prophet`` extra."""
    from warden_algos.extras import require

    require("prophet", what="the prophet algorithm")
    try:
        raw = _ModelJson.model_validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        raise InvalidInput(
            f"the state's prophet model is not a fitted Prophet model's JSON: {where}: "
            f"{first['msg']}",
            field="state",
        ) from None
    _check_version(raw.prophet_version)
    _check_features(raw)
    return _model_of(text, raw)


@functools.cache
def _installed_prophet() -> str:
    return importlib.metadata.version("prophet")


def _check_version(written_by: str) -> None:
    installed = _installed_prophet()
    if written_by.split(".")[0] != installed.split(".")[0]:
        raise IncompatibleState(
            f"the state's model was written by prophet {written_by[:40]}, another major version "
            f"than this installation's prophet {installed}: fit it again here",
            field="state",
        )


def _unsupported(what: str) -> IncompatibleState:
    return IncompatibleState(
        f"the state's prophet model uses {what}, which the prophet detector never fits: fit it "
        "again with this detector",
        field="state",
    )


def _check_features(raw: _ModelJson) -> None:
    if raw.growth != "linear":
        raise _unsupported(f"{raw.growth[:40]!r} growth")
    if raw.logistic_floor or raw.scaling not in ("absmax", "minmax"):
        raise _unsupported(f"{raw.scaling[:40]!r} scaling with a floor")
    if raw.mcmc_samples != 0:
        raise _unsupported("MCMC samples")
    if raw.extra_regressors[0] or raw.extra_regressors[1]:
        raise _unsupported("extra regressors")
    if raw.holidays is not None:
        raise _unsupported("custom holidays")
    names, specs = raw.seasonalities
    if sorted(names) != sorted(specs) or len(set(names)) != len(names):
        raise _malformed("its seasonalities' names do not match their settings")
    if any(specs[name].condition_name is not None for name in names):
        raise _unsupported("conditional seasonalities")
    if raw.country_holidays is not None and raw.country_holidays not in supported_countries():
        raise _unsupported(f"holidays of {raw.country_holidays[:40]!r}")


def _malformed(problem: str) -> InvalidInput:
    return InvalidInput(f"the state's prophet model is malformed: {problem}", field="state")


def _single_draw(params: Mapping[str, list[list[float]]], name: str) -> F64Array:
    rows = params.get(name)
    if rows is None or len(rows) != 1:
        raise _malformed(f"parameter {name!r} is missing or not a single fitted draw")
    values = np.asarray(rows[0], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise _malformed(f"parameter {name!r} is not finite")
    return values


def _model_of(text: str, raw: _ModelJson) -> ProphetModel:
    import pandas as pd

    k, m = _single_draw(raw.params, "k"), _single_draw(raw.params, "m")
    deltas, beta = _single_draw(raw.params, "delta"), _single_draw(raw.params, "beta")
    changepoints = np.asarray(raw.changepoints_t, dtype=np.float64)
    if k.shape != (1,) or m.shape != (1,) or deltas.shape != changepoints.shape:
        raise _malformed("its trend parameters do not match its changepoints")
    names, specs = raw.seasonalities
    seasonalities = tuple((specs[name].period, specs[name].fourier_order) for name in names)
    holiday_names = [] if raw.train_holiday_names is None else raw.train_holiday_names.data
    # make_holiday_features orders the holiday columns by their names "<holiday>_delim_+0".
    holidays = tuple(sorted(holiday_names, key=lambda name: f"{name}_delim_+0"))
    columns = 2 * sum(order for _, order in seasonalities) + len(holidays)
    if max(columns, changepoints.shape[0]) > MAX_TERMS:
        raise _unsupported(f"over {MAX_TERMS:,} features or changepoints")
    rows = raw.train_component_cols.data
    if beta.shape != (max(columns, 1),) or len(rows) != beta.shape[0]:
        raise _malformed(
            f"it has {beta.shape[0]} coefficients and {len(rows)} component rows for "
            f"{columns} features"
        )
    values = [raw.y_scale, raw.start, raw.t_scale, *changepoints]
    if not np.all(np.isfinite(values)) or raw.y_scale <= 0 or raw.t_scale <= 0:
        raise _malformed("its scales or changepoints are not finite and positive")
    try:
        # As model_from_json reads them back (microsecond start), in nanoseconds.
        start = pd.Timestamp.fromtimestamp(raw.start, tz="UTC").tz_localize(None)
        start_ns = int(start.as_unit("ns").value)
        t_scale_ns = float(pd.Timedelta(seconds=raw.t_scale).as_unit("ns").value)
    except (ValueError, OverflowError, OSError):
        raise _malformed("its start or time scale is out of range") from None
    return ProphetModel(
        source=text,
        prophet_version=raw.prophet_version,
        seasonality_mode=raw.seasonality_mode,
        country=raw.country_holidays,
        start_ns=start_ns,
        t_scale_ns=t_scale_ns,
        y_scale=raw.y_scale,
        floor=0.0 if raw.scaling == "absmax" else float(raw.y_min or 0.0),
        k=float(np.nanmean(k)),
        m=float(np.nanmean(m)),
        deltas=deltas,
        changepoints_t=changepoints,
        seasonalities=seasonalities,
        holidays=holidays,
        beta=beta[None, :],
        additive=np.array([row.get("additive_terms", 0) for row in rows], dtype=np.float64),
        multiplicative=np.array(
            [row.get("multiplicative_terms", 0) for row in rows], dtype=np.float64
        ),
    )


def compact_model_json(model: Any) -> str:
    """``model_to_json`` of a fitted Prophet model without its training rows (all but the first
    and last fit points): what forecasting needs, a few KB whatever the history. Trims ``model``
    itself, which must not be used to forecast the history afterwards."""
    from prophet.serialize import model_to_json

    ends = [0, len(model.history) - 1]
    model.history = model.history.iloc[ends].reset_index(drop=True)
    model.history_dates = model.history_dates.iloc[ends].reset_index(drop=True)
    if "trend" in model.params:
        model.params = {**model.params, "trend": model.params["trend"][:, ends]}
    text: str = model_to_json(model)
    return text


@functools.cache
def supported_countries() -> frozenset[str]:
    """The country codes with a holiday calendar (the ``holidays`` library ships with prophet)."""
    import holidays  # ~60 ms, paid only when a country is asked for

    return frozenset(holidays.list_supported_countries())


@functools.lru_cache(maxsize=256)
def holiday_calendar(country: str, year: int) -> Mapping[str, I64Array]:
    """Each holiday of ``country`` in ``year`` and its days since the epoch, as Prophet's
    ``make_holidays_df`` lists them (English names, no subdivision, unexpanded)."""
    import holidays

    table = getattr(holidays, {"TU": "TR"}.get(country, country))(
        expand=False, language="en_US", subdiv=None, years=[year]
    )
    days: dict[str, list[int]] = {}
    for date in table:
        for name in table.get_list(date):
            days.setdefault(name, []).append((date - _EPOCH_DATE).days)
    return {name: np.array(sorted(on), dtype=np.int64) for name, on in days.items()}


class ProphetState(AlgorithmState):
    """A fitted Prophet model and the noise scale its band is drawn with: the band of a new point
    is its forecast ± z·sigma, as ``detect`` draws it inside the fitted history."""

    model_json: str | None = Field(
        None,
        max_length=MAX_MODEL_JSON_CHARS,
        description="The fitted model, Prophet's JSON (model_to_json) without its training rows; "
        "null when the history had too few valid points to fit (no opinion on new points).",
    )
    sigma: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="Observation noise: RMS residual of the history's valid points, floored as "
        "detect floors it (null without a model).",
    )
    open_incident: bool = Field(
        False, description="The last point scored was flagged: a flagged next point continues it."
    )

    _model: ProphetModel | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _read_model(self) -> ProphetState:
        if (self.model_json is None) != (self.sigma is None):
            raise InvalidInput(
                "the prophet state has a model without sigma, or the reverse", field="state"
            )
        # Parsed once, when the state is built or loaded (a serve process caches it decoded).
        self._model = None if self.model_json is None else read_model(self.model_json)
        return self

    @property
    def model(self) -> ProphetModel | None:
        """The model, ready to forecast (None when the history was too short to fit)."""
        return self._model

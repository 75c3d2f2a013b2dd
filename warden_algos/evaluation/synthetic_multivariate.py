"""Synthetic multivariate series with injected anomalies of four kinds, and their ground truth.

A case is what a host sends to a multivariate detector: the readings of ``n_columns`` related
sensors of one machine at aligned timestamps, a clean training stretch to fit on, then a test
stretch to score in which anomalies were injected, each in ONE column, with its range and column.

How a case is made (every knob is a field of :class:`Setting`, with its default):

- Latent factors. ``n_factors`` independent AR(1) processes, unit variance, lag-one
  autocorrelation ``factor_autocorrelation`` (0.98 a point: they wander over some 50 points,
  about 8 hours at the 10-minute ``interval_s``). They are what the columns have in common.
- Mixing. Column ``j``'s factor part is ``L_j . f_t``, ``L`` a random loading matrix whose rows
  are normal vectors scaled to unit length, so every column's factor part has unit variance and
  two columns are correlated by the cosine of their loadings: the columns are correlated.
- Seasonality. Each column adds ``a_j sin(2 pi t / period + phase_j)``, its own amplitude drawn
  from ``seasonal_amplitude`` (in factor units) and its own phase (uniform), ``period`` points a
  cycle (144: a day of 10-minute points).
- Noise. Each column adds its own white Gaussian noise of standard deviation ``noise`` (in
  factor units): what a model cannot predict from the other columns.
- Units. A column reads ``level_j + unit_j x (factor part + seasonal part + noise)``, levels
  log-uniform in 10 to 1,000 and units 2 to 10 % of the level, so columns have unrelated scales.
- Stretches. ``train_points`` clean points (no anomaly) then ``test_points`` points holding the
  anomalies. A column's ``spread`` is the robust standard deviation (IQR / 1.349) of its clean
  training stretch (seasonality, factors and noise together: about 1.3 units); anomaly sizes are
  in spreads.

The anomalies, in the test stretch only, each in one column drawn at random, at least
``min_gap`` points apart (and from the stretch's start and end):

- ``point`` (``n_point`` of them): one value moved by ``point_size`` spreads, up or down;
- ``collective`` (``n_collective``): ``collective_points`` consecutive values changed by up to
  ``collective_size`` spreads, shaped as a ``shift`` (constant offset), a ``bump`` (half a sine,
  up or down) or an ``oscillation`` (a 4-point sine) drawn at random;
- ``correlation_break`` (``n_break``): for ``break_points`` points the column's factor part no
  longer follows the factors: it continues from the factors' value at the break's start as an
  independent path of the same AR(1) process (same marginal distribution, no jump at the start,
  diverging within a few points), its seasonality and noise unchanged, and the column is clipped
  to its training minimum and maximum: every value stays in the column's usual range, so no
  per-column detector can see it, only the columns' disagreement shows it;
- ``drift`` (``n_drift``): a linear ramp from 0 to ``drift_size`` spreads over ``drift_points``
  points, after which the column is normal again: its first points are indistinguishable from
  noise, so no detector can recall all of a drift's range.

How hard that is (:func:`describe_cases`, seeds 0-199): the columns' mean absolute correlation in
the clean training stretch is 0.45, the first ``n_factors + 2`` principal components (factors
plus the seasonal sine and cosine) carry 98.6 % of the standardised variance; a correlation
break moves its column a median 3.3 noise standard deviations (0.5 spread) away from where the
factors put it, and 0.1 % of its points lie more than 3 spreads from the column's median (a
per-column z-score sees none of it), while a point anomaly is there at 3 to 6 spreads; 13 % of
the test rows are anomalous. ``HARD`` has more columns and factors, twice the noise, and smaller
anomalies: correlation 0.35, 94 % of the variance in the first ``n_factors + 2`` components, a
break a median 1.7 noise standard deviations away.

numpy and pydantic only; nothing here prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from warden_algos.interfaces import F64Array, I64Array

#: A Tuesday 00:00 UTC: the first timestamp of every case.
START_S = 1_699_920_000
#: IQR of a standard normal: a robust standard deviation is IQR / this.
IQR_PER_SIGMA = 1.3489795

Kind = Literal["point", "collective", "correlation_break", "drift"]
KINDS: tuple[Kind, ...] = ("point", "collective", "correlation_break", "drift")
SHAPES = ("shift", "bump", "oscillation")


class Setting(BaseModel):
    """How the cases are made and how hard they are. The defaults are the benchmark's reference
    setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_columns: int = Field(8, ge=2, le=256, description="Columns (sensors) per case.")
    n_factors: int = Field(2, ge=1, le=64, description="Latent factors the columns are mixed from.")
    factor_autocorrelation: float = Field(
        0.98, ge=0, lt=1, description="Lag-one autocorrelation of every factor (AR(1))."
    )
    period: int = Field(144, ge=4, le=100_000, description="Points in a seasonal cycle.")
    seasonal_amplitude: tuple[float, float] = Field(
        (0.5, 1.5), description="Range of each column's seasonal amplitude, in factor units."
    )
    noise: float = Field(
        0.2,
        ge=0,
        le=10,
        description="Standard deviation of each column's own white noise, in factor units.",
    )
    interval_s: int = Field(600, ge=1, le=86_400, description="Seconds between points.")
    train_points: int = Field(1440, ge=16, le=1_000_000, description="Clean training points.")
    test_points: int = Field(864, ge=16, le=1_000_000, description="Test points (anomalous).")
    min_gap: int = Field(
        24, ge=1, le=100_000, description="Normal points at least between two anomalies."
    )
    n_point: int = Field(2, ge=0, le=1000, description="Point anomalies per case.")
    point_size: tuple[float, float] = Field(
        (3.0, 6.0), description="Range of a point anomaly's size, in spreads."
    )
    n_collective: int = Field(1, ge=0, le=1000, description="Collective anomalies per case.")
    collective_points: tuple[int, int] = Field(
        (5, 15), description="Range (inclusive) of a collective anomaly's length."
    )
    collective_size: tuple[float, float] = Field(
        (1.0, 2.0), description="Range of a collective anomaly's peak size, in spreads."
    )
    n_break: int = Field(1, ge=0, le=1000, description="Correlation breaks per case.")
    break_points: tuple[int, int] = Field(
        (20, 60), description="Range (inclusive) of a correlation break's length."
    )
    n_drift: int = Field(1, ge=0, le=1000, description="Drifts per case.")
    drift_points: tuple[int, int] = Field(
        (30, 90), description="Range (inclusive) of a drift's length."
    )
    drift_size: tuple[float, float] = Field(
        (2.0, 4.0), description="Range of a drift's final size, in spreads."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Setting:
        for name in ("seasonal_amplitude", "point_size", "collective_size", "drift_size"):
            low, high = getattr(self, name)
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high")
        for name in ("collective_points", "break_points", "drift_points"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must satisfy 1 <= low <= high")
        if self.n_factors > self.n_columns:
            raise ValueError("n_factors must not exceed n_columns")
        if self.test_points < self._longest_needed():
            raise ValueError("test_points cannot hold the anomalies with min_gap between them")
        return self

    def counts(self) -> dict[Kind, int]:
        return {
            "point": self.n_point,
            "collective": self.n_collective,
            "correlation_break": self.n_break,
            "drift": self.n_drift,
        }

    def _longest_needed(self) -> int:
        longest = {
            "point": 1,
            "collective": self.collective_points[1],
            "correlation_break": self.break_points[1],
            "drift": self.drift_points[1],
        }
        counts = self.counts()
        total = sum(counts.values())
        return sum(longest[k] * n for k, n in counts.items()) + (total + 1) * self.min_gap


#: A harder setting: more columns and factors, twice the noise, smaller anomalies.
HARD = Setting(
    n_columns=12,
    n_factors=3,
    noise=0.4,
    point_size=(2.5, 4.5),
    collective_size=(0.8, 1.5),
    drift_size=(1.5, 3.0),
)


class Anomaly(NamedTuple):
    """One injected anomaly: rows ``start`` to ``end`` (inclusive, indices into the whole
    matrix) of column ``column``."""

    kind: Kind
    start: int
    end: int
    column: int
    size: float  # in spreads: the peak change (point, collective, drift); 0 for a break
    shape: str  # collective: shift, bump or oscillation; else the kind


class Case(NamedTuple):
    """One generated series and its ground truth."""

    timestamps: I64Array
    matrix: F64Array  # rows x columns, anomalies injected (test stretch only)
    clean: F64Array  # the same without anomalies
    columns: list[str]
    train_points: int  # rows [0, train_points) are the training stretch
    anomalies: list[Anomaly]
    spread: F64Array  # per column: robust standard deviation of the clean training stretch
    factor_part: F64Array  # rows x columns: each column's clean factor part, in its units
    noise_unit: F64Array  # per column: the noise's standard deviation, in its units
    n_factors: int
    seed: int

    @property
    def train(self) -> tuple[I64Array, F64Array]:
        return self.timestamps[: self.train_points], self.matrix[: self.train_points]

    @property
    def test(self) -> tuple[I64Array, F64Array]:
        return self.timestamps[self.train_points :], self.matrix[self.train_points :]

    def test_labels(self, kinds: Sequence[str] = KINDS) -> npt.NDArray[np.bool_]:
        """One flag per test row: inside an anomaly of one of ``kinds``."""
        labels = np.zeros(self.matrix.shape[0] - self.train_points, dtype=bool)
        for anomaly in self.anomalies:
            if anomaly.kind in kinds:
                labels[anomaly.start - self.train_points : anomaly.end + 1 - self.train_points] = 1
        return labels


def generate_case(setting: Setting, seed: int) -> Case:
    """One case; the same setting and seed always give the same case (on any machine: numpy's
    PCG64 and plain arithmetic)."""
    s = setting
    rng = np.random.default_rng(seed)
    n, m, k = s.train_points + s.test_points, s.n_columns, s.n_factors
    phi = s.factor_autocorrelation

    factors = _ar1(rng, n, k, phi, rng.standard_normal(k))
    loadings = rng.standard_normal((m, k))
    loadings /= np.linalg.norm(loadings, axis=1, keepdims=True)
    amplitude = rng.uniform(*s.seasonal_amplitude, m)
    phase = rng.uniform(0.0, 2 * math.pi, m)
    angle = 2 * math.pi * np.arange(n) / s.period
    seasonal = amplitude[None, :] * np.sin(angle[:, None] + phase[None, :])
    noise = s.noise * rng.standard_normal((n, m))
    level = np.exp(rng.uniform(math.log(10.0), math.log(1000.0), m))
    unit = level * rng.uniform(0.02, 0.10, m)

    coupled = factors @ loadings.T  # (n, m), factor units
    clean = level + unit * (coupled + seasonal + noise)
    train = clean[: s.train_points]
    q25, q75 = np.percentile(train, [25.0, 75.0], axis=0)
    spread = (q75 - q25) / IQR_PER_SIGMA
    low, high = train.min(axis=0), train.max(axis=0)

    matrix = clean.copy()
    anomalies = []
    for kind, start, length in _placed(s, rng):
        column = int(rng.integers(m))
        end = start + length - 1
        rows = slice(start, end + 1)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind == "point":
            size = float(rng.uniform(*s.point_size))
            matrix[start, column] += sign * size * spread[column]
            anomalies.append(Anomaly(kind, start, end, column, size, kind))
        elif kind == "collective":
            size = float(rng.uniform(*s.collective_size))
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            i = np.arange(length)
            if shape == "shift":
                profile = np.ones(length)
            elif shape == "bump":
                profile = np.sin(math.pi * (i + 1) / (length + 1))
            else:
                profile = np.sin(math.pi * (i + 1) / 2)
            matrix[rows, column] += sign * size * spread[column] * profile
            anomalies.append(Anomaly(kind, start, end, column, size, shape))
        elif kind == "correlation_break":
            own = _ar1(rng, length + 1, k, phi, factors[start - 1])[1:]  # continues f[start-1]
            decoupled = own @ loadings[column]
            value = level[column] + unit[column] * (
                decoupled + seasonal[rows, column] + noise[rows, column]
            )
            matrix[rows, column] = np.clip(value, low[column], high[column])
            anomalies.append(Anomaly(kind, start, end, column, 0.0, kind))
        else:
            size = float(rng.uniform(*s.drift_size))
            ramp = np.arange(1, length + 1) / length
            matrix[rows, column] += sign * size * spread[column] * ramp
            anomalies.append(Anomaly(kind, start, end, column, size, kind))
    anomalies.sort(key=lambda a: a.start)
    timestamps = START_S + s.interval_s * np.arange(n, dtype=np.int64)
    return Case(
        timestamps=timestamps,
        matrix=matrix,
        clean=clean,
        columns=[f"sensor_{j:02d}" for j in range(m)],
        train_points=s.train_points,
        anomalies=anomalies,
        spread=spread,
        factor_part=unit * coupled,
        noise_unit=unit * s.noise,
        n_factors=k,
        seed=seed,
    )


def generate_cases(setting: Setting, n_cases: int, seed: int) -> list[Case]:
    """Cases of seeds ``seed``, ``seed + 1``, ... (each case its own seed, so any one can be
    regenerated alone)."""
    return [generate_case(setting, seed + i) for i in range(n_cases)]


def _ar1(rng: np.random.Generator, n: int, k: int, phi: float, first: npt.ArrayLike) -> F64Array:
    """``k`` unit-variance AR(1) paths of ``n`` points starting at ``first``."""
    shocks = math.sqrt(1.0 - phi * phi) * rng.standard_normal((n, k))
    out = np.empty((n, k))
    out[0] = first
    for t in range(1, n):
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _placed(s: Setting, rng: np.random.Generator) -> list[tuple[Kind, int, int]]:
    """(kind, start row, length) of every anomaly: lengths drawn, order shuffled, the test
    stretch's slack spread at random between them (at least ``min_gap`` around each)."""
    ranges = {
        "collective": s.collective_points,
        "correlation_break": s.break_points,
        "drift": s.drift_points,
    }
    drawn: list[tuple[Kind, int]] = []
    for kind, count in s.counts().items():
        for _ in range(count):
            if kind == "point":
                drawn.append((kind, 1))
            else:
                low, high = ranges[kind]
                drawn.append((kind, int(rng.integers(low, high + 1))))
    order = rng.permutation(len(drawn))
    drawn = [drawn[i] for i in order]
    slack = s.test_points - sum(length for _, length in drawn) - (len(drawn) + 1) * s.min_gap
    cuts = np.sort(rng.integers(0, slack + 1, len(drawn)))
    extra = np.diff(np.concatenate([[0], cuts]))  # slack before each anomaly
    placed = []
    position = s.train_points
    for (kind, length), more in zip(drawn, extra, strict=True):
        position += s.min_gap + int(more)
        placed.append((kind, position, length))
        position += length
    return placed


def describe_cases(cases: Sequence[Case]) -> dict[str, float]:
    """What the cases look like, measured rather than configured:

    - ``mean_abs_correlation``: mean |Pearson correlation| over column pairs, clean training
      stretch;
    - ``latent_variance``: share of the standardised training variance carried by the first
      ``n_factors + 2`` principal components (factors plus seasonal sine and cosine);
    - ``break_departure_noise``: median |value - clean value| of correlation-break points, in the
      column's noise standard deviations (how far the column strays from where its factors put
      it); ``break_departure_spread``: the same in spreads;
    - ``break_visible``: share of correlation-break points more than 3 spreads from the column's
      training median (what a per-column robust z-score at 3 could flag);
    - ``anomalous_share``: share of test rows inside an anomaly; ``anomalies_per_case``.
    """
    correlations, latent, departures, departures_spread, visible, shares = [], [], [], [], [], []
    for case in cases:
        train = case.clean[: case.train_points]
        corr = np.atleast_2d(np.corrcoef(train.T))
        upper = np.triu_indices_from(corr, 1)
        correlations.append(float(np.mean(np.abs(corr[upper]))))
        standard = (train - train.mean(axis=0)) / train.std(axis=0)
        eigen = np.sort(np.linalg.eigvalsh(np.cov(standard.T)))[::-1]
        latent.append(float(eigen[: case.n_factors + 2].sum() / eigen.sum()))
        median = np.median(train, axis=0)
        for a in case.anomalies:
            if a.kind != "correlation_break":
                continue
            rows = slice(a.start, a.end + 1)
            moved = np.abs(case.matrix[rows, a.column] - case.clean[rows, a.column])
            departures.extend(moved / case.noise_unit[a.column])
            departures_spread.extend(moved / case.spread[a.column])
            away = np.abs(case.matrix[rows, a.column] - median[a.column]) / case.spread[a.column]
            visible.extend(away > 3.0)
        shares.append(float(case.test_labels().mean()))
    return {
        "mean_abs_correlation": float(np.mean(correlations)),
        "latent_variance": float(np.mean(latent)),
        "break_departure_noise": float(np.median(departures)) if departures else math.nan,
        "break_departure_spread": float(np.median(departures_spread))
        if departures_spread
        else math.nan,
        "break_visible": float(np.mean(visible)) if visible else math.nan,
        "anomalous_share": float(np.mean(shares)),
        "anomalies_per_case": float(np.mean([len(case.anomalies) for case in cases])),
    }

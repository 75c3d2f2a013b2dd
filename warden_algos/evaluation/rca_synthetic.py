"""Synthetic dimensional metrics with injected root causes, and top-k scoring of RCA algorithms.

A case is what a host sends to an RCA algorithm when a total metric (requests per interval, say)
is anomalous: the total, every one-dimension slice of it (country=US, device=ios, ...), the
anomaly times, and here also the ground truth: the slice(s) whose change caused the anomaly.

How a case is made (every knob is a field of :class:`Difficulty`, with its default):

- Dimensions and elements. ``n_dimensions`` dimensions (country, device, datacenter, browser,
  ...), each with a number of elements drawn uniformly from ``values_per_dimension``.
- The cube. The data is a cube of leaf cells, one per combination of elements; a slice is the sum
  of the leaves that carry its element (a marginal sum), the total is the sum of all leaves. So
  the slices of every dimension add up to the total, exactly as real breakdowns do.
- Base levels. Every element has a log-normal weight (``share_sigma``), so some elements are big
  and some small; a leaf's level is the product of its elements' weights times a log-normal
  interaction factor (``interaction_sigma``: dimensions are not independent, e.g. a data centre
  serves some countries more than others), scaled so the total is ``total_level`` per interval.
- Daily seasonality. Every leaf follows 1 + ``seasonality`` * sin(2 pi t / day + phase), where the
  phase belongs to the leaf's element of the first dimension (countries in different time zones):
  the shares of the first dimension's elements change over the day.
- Noise, all multiplicative. Per element of every dimension, a slow random-walk drift of its
  level (``element_drift`` per day: yesterday is an imperfect forecast of today) and a log-normal
  factor per point with standard deviation ``element_noise`` and lag-one autocorrelation
  ``noise_autocorrelation`` (all leaves of an element share both, so they do not average out in
  that element's slice); per leaf and point, log-normal noise of relative variance
  ``leaf_noise``**2 + 1/level (count-like: small leaves are relatively noisier, as Poisson counts).
- The anomaly. ``anomaly_points`` consecutive points (a number drawn from the range) starting in
  the last day. The root cause is one element of one dimension, or (with probability
  ``p_two_elements``) two elements of the same dimension; all leaves carrying it are multiplied
  at the anomaly times by 1 - drop (drop drawn from ``drop_range``) or 1 + rise (from
  ``rise_range``), up with probability ``p_up``. The root cause and magnitude are drawn so the
  expected change of the total is at least ``min_total_effect`` of the total: an anomaly a
  detector on the total would have flagged. This rules out tiny elements with small changes but
  keeps small elements with large changes. Each root-cause leaf's change is jittered
  (``effect_jitter``), as an outage does not hit every leaf alike.
- Harder variants, all off by default (their defaults draw no random number, so a setting that
  leaves them alone makes exactly the cases it made before they existed):
  ``effect_spread`` weights the root cause's change per leaf by a log-normal factor per element
  of each other dimension (an outage of one country that hits some devices far harder), keeping
  the root cause's own level-weighted change; ``global_wobble`` multiplies every leaf by one
  common log-normal factor at the anomaly times (a forecast miss of the whole total), so the root
  cause may explain less than half of the total's change, or move against it;
  ``count_dispersion`` multiplies the 1/level term of the leaf noise (over-dispersed counts);
  ``min_dimensions`` gives every case its own number of dimensions.

How hard that is: :func:`describe_cases` measures it on generated cases. With the defaults, the
total's forecast error (the relative error of the median of the same time on the three previous
days, at normal points) has a standard deviation of about 3.5 %, so the smallest anomalies are
about 3 of those, the median one about 6; the noise also leaves the forecast of a slice off by
several per cent, more for small slices; a quarter of the root causes are two elements.
Named settings: ``HARD`` (noisier, more and more unequal elements, smaller anomalies),
``UNEVEN`` (effect_spread 0.8), ``WOBBLE`` (global_wobble 0.3: the root cause explains less than
half of the total's change in about a third of the cases) and ``NOISY`` (close to an
Adtributor-style count generator: 2 to 4 dimensions, over-dispersed, noisy, a small wobble).

Scoring (:func:`evaluate_rca`): an algorithm is constructed as the SDK does
(``cls.from_params(params)``) and run through :func:`warden_algos.interfaces.run_rca` (input
checks, the algorithm's ``simple_rca``, output checks, ranking). A case is a top-1 hit when the
first ranked slice is one of the root-cause slices, a top-3 hit when one of the first three is.
For a two-element root cause, finding either element counts as a hit (it leads an operator to
the faulty dimension and to half of the cause); ``complete_top3`` is the stricter figure: every
root-cause slice is among the first three.

numpy and pydantic only at import; nothing here prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from warden_algos.interfaces import I64Array, RCAAlgorithm, TimeSeries, run_rca

DAY_S = 86_400
#: A Tuesday 00:00 UTC: cases start at a day boundary, so "time of day" is plain arithmetic.
START_S = 1_699_920_000

DIMENSION_NAMES = ("country", "device", "datacenter", "browser", "os", "network")
ELEMENT_NAMES: dict[str, tuple[str, ...]] = {
    "country": ("US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "ES", "IT", "NL", "AU"),
    "device": ("desktop", "ios", "android", "tablet", "tv", "console", "watch", "car", "kiosk",
               "bot", "feature_phone", "other"),
    "datacenter": ("us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-east",
                   "sa-east", "ca-central", "me-south", "af-south", "ap-north", "eu-north"),
    "browser": ("chrome", "safari", "firefox", "edge", "samsung", "opera", "uc", "yandex",
                "brave", "vivaldi", "webview", "other"),
    "os": ("windows", "macos", "linux", "ios", "android", "chromeos", "freebsd", "tizen",
           "harmony", "kaios", "webos", "other"),
    "network": ("wifi", "4g", "5g", "3g", "ethernet", "satellite", "2g", "cable", "dsl",
                "fiber", "lora", "other"),
}  # fmt: skip
MAX_VALUES = 12


class Difficulty(BaseModel):
    """How hard the generated cases are. The defaults are the reference setting of the benchmark:
    realistic noise, big and small elements, dependent dimensions, a daily cycle that moves the
    shares, and anomalies that change the total by at least 10 % (about 5 times its own noise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_dimensions: int = Field(4, ge=1, le=len(DIMENSION_NAMES), description="Dimensions.")
    values_per_dimension: tuple[int, int] = Field(
        (3, 8), description="Range (inclusive) of the number of elements of each dimension."
    )
    n_points: int = Field(576, ge=16, le=100_000, description="Points per series (4 days).")
    interval_s: int = Field(600, ge=1, le=DAY_S, description="Sampling interval in seconds.")
    total_level: float = Field(
        50_000.0, gt=0, le=1e12, description="Mean of the total per interval (counts)."
    )
    share_sigma: float = Field(
        1.0,
        ge=0,
        le=5,
        description="Sigma of the log-normal element weights: 1.0 makes the largest element of a "
        "dimension of 6 typically 10-20 times the smallest.",
    )
    interaction_sigma: float = Field(
        0.5,
        ge=0,
        le=5,
        description="Sigma of the log-normal per-leaf factor that makes dimensions dependent "
        "(0: the cube is the product of the marginal shares).",
    )
    seasonality: float = Field(
        0.3, ge=0, lt=1, description="Amplitude of the daily cycle, as a fraction of the level."
    )
    element_noise: float = Field(
        0.02,
        ge=0,
        le=2,
        description="Relative noise shared by all leaves of an element (per dimension element "
        "and point).",
    )
    noise_autocorrelation: float = Field(
        0.5, ge=0, lt=1, description="Lag-one autocorrelation of the element noise."
    )
    element_drift: float = Field(
        0.01,
        ge=0,
        le=2,
        description="Random-walk drift of every element's level: standard deviation of its "
        "relative change over one day (yesterday is an imperfect forecast of today).",
    )
    leaf_noise: float = Field(0.1, ge=0, le=2, description="Relative noise of every leaf.")
    p_up: float = Field(0.5, ge=0, le=1, description="Probability that the anomaly is a rise.")
    drop_range: tuple[float, float] = Field(
        (0.3, 0.95), description="Fraction lost by the root-cause leaves in a drop."
    )
    rise_range: tuple[float, float] = Field(
        (0.5, 3.0), description="Fraction gained by the root-cause leaves in a rise."
    )
    min_total_effect: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Smallest expected relative change of the total caused by the anomaly.",
    )
    p_two_elements: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Probability that the root cause is two elements of one dimension.",
    )
    effect_jitter: float = Field(
        0.3,
        ge=0,
        le=2,
        description="Sigma of the log-normal factor on each root-cause leaf's change: an outage "
        "of one element does not hit all its leaves alike.",
    )
    anomaly_points: tuple[int, int] = Field(
        (1, 6), description="Range (inclusive) of the number of consecutive anomalous points."
    )
    # The fields below came later; their defaults draw nothing and change nothing, so a setting
    # that leaves them alone makes the same cases as before they existed.
    min_dimensions: int | None = Field(
        None,
        ge=1,
        le=len(DIMENSION_NAMES),
        description="When set, every case has its own number of dimensions, drawn uniformly "
        "from min_dimensions to n_dimensions (None: always n_dimensions).",
    )
    count_dispersion: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="Over-dispersion of the count-like leaf noise: a leaf's relative variance is "
        "leaf_noise**2 + count_dispersion/level (1: Poisson-like counts; 5: events come in "
        "bursts of about 5).",
    )
    effect_spread: float = Field(
        0.0,
        ge=0,
        le=3,
        description="Sigma of the log-normal weight that every element of the other dimensions "
        "gives the root cause's change, beyond effect_jitter: an outage of one country that "
        "hits some devices and data centres much harder than others. The root cause's own "
        "(level-weighted) change is kept (0: every root-cause leaf moves alike up to the "
        "jitter).",
    )
    global_wobble: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Sigma of the log-normal factor by which every leaf moves at the anomaly "
        "times besides the root cause (one factor per case: a forecast miss of the total, a "
        "holiday, a marketing push); 0: none.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Difficulty:
        low, high = self.values_per_dimension
        if not 2 <= low <= high <= MAX_VALUES:
            raise ValueError(f"values_per_dimension must satisfy 2 <= low <= high <= {MAX_VALUES}")
        if not 0 < self.drop_range[0] <= self.drop_range[1] < 1:
            raise ValueError("drop_range must satisfy 0 < low <= high < 1")
        if not 0 < self.rise_range[0] <= self.rise_range[1]:
            raise ValueError("rise_range must satisfy 0 < low <= high")
        if not 1 <= self.anomaly_points[0] <= self.anomaly_points[1]:
            raise ValueError("anomaly_points must satisfy 1 <= low <= high")
        if self.n_points * self.interval_s < DAY_S + self.anomaly_points[1] * self.interval_s:
            raise ValueError("the series must cover more than a day plus the anomaly")
        if self.min_dimensions is not None and self.min_dimensions > self.n_dimensions:
            raise ValueError("min_dimensions must not exceed n_dimensions")
        return self


#: A harder setting for the benchmark: noisier, more and more unequal elements, strongly dependent
#: dimensions, smaller anomalies and more two-element root causes.
HARD = Difficulty(
    values_per_dimension=(4, 12),
    share_sigma=1.3,
    interaction_sigma=1.0,
    element_noise=0.03,
    element_drift=0.02,
    leaf_noise=0.2,
    drop_range=(0.2, 0.9),
    rise_range=(0.3, 2.0),
    min_total_effect=0.12,
    p_two_elements=0.4,
    effect_jitter=0.5,
)

#: The outage hits its leaves unequally: every element of the other dimensions weights the root
#: cause's change by its own log-normal factor (sigma 0.8 each), so a slice of another dimension
#: can move more, relatively, than the root cause as a whole (which "largest relative change"
#: then mistakes for the cause).
UNEVEN = Difficulty(effect_spread=0.8)

#: A global wobble dominates: at the anomaly times every leaf also moves by one common
#: log-normal factor (sigma 0.3, a forecast miss of the whole total), often as large as the root
#: cause's own change and as often against it as with it.
WOBBLE = Difficulty(global_wobble=0.3)

#: Noisy, close to an Adtributor-style count generator: 2 to 4 dimensions, over-dispersed counts
#: (events in bursts of about 5), noisier elements and leaves, faster drift and a small global
#: wobble (sigma 0.08): the median anomaly is about 2.4 times the total's forecast error (the
#: smallest about 1), and the root cause sometimes (about 5 % of cases) explains less than half
#: of the total's change.
NOISY = Difficulty(
    min_dimensions=2,
    element_noise=0.05,
    element_drift=0.02,
    leaf_noise=0.25,
    count_dispersion=5.0,
    global_wobble=0.08,
)

#: Every named setting, as the benchmark and ``evaluate --difficulty`` call them.
SETTINGS: dict[str, Difficulty] = {
    "default": Difficulty(),
    "hard": HARD,
    "uneven": UNEVEN,
    "wobble": WOBBLE,
    "noisy": NOISY,
}


class RcaCase(NamedTuple):
    """One RCA request with its answer."""

    metric_of_interest: TimeSeries
    related_metrics: list[TimeSeries]
    anomalies: I64Array
    root_causes: tuple[str, ...]  # slice keys, e.g. ("country=US",)
    root_dimension: str
    factor: float  # what the root-cause leaves were multiplied by at the anomaly times
    total_effect: float  # expected relative change of the total
    #: Dependency edges (parent, child) between the metrics' keys, when the case has a graph
    #: (the request's ``rca.graph``; ``interfaces.graph``).
    graph: tuple[tuple[str, str], ...] | None = None


class RcaScore(BaseModel):
    """Top-k accuracy of one algorithm on a list of cases."""

    model_config = ConfigDict(frozen=True)

    algorithm: str
    params: dict[str, Any]
    n_cases: int
    top1: float = Field(description="Share of cases whose first slice is a root cause.")
    top3: float = Field(description="Share of cases with a root cause in the first three.")
    complete_top3: float = Field(description="Share with every root cause in the first three.")
    mean_results: float = Field(description="Mean number of slices returned (k = 3).")
    wall_s: float = Field(description="Time spent in the runner (checks + algorithm), all cases.")

    @property
    def ms_per_case(self) -> float:
        return 1000.0 * self.wall_s / max(self.n_cases, 1)


def generate_cases(difficulty: Difficulty, n_cases: int, seed: int) -> list[RcaCase]:
    """``n_cases`` independent cases; the same arguments always give the same cases."""
    rng = np.random.default_rng(seed)
    return [_generate_case(difficulty, rng) for _ in range(n_cases)]


def evaluate_rca(
    algorithm: type[RCAAlgorithm[Any]], params: Mapping[str, Any], cases: Sequence[RcaCase]
) -> RcaScore:
    """Run ``algorithm`` with ``params`` on every case, as the SDK would, and score its top 3."""
    algo = algorithm.from_params(params)
    rankings: list[list[str]] = []
    wall = 0.0
    for case in cases:
        started = time.perf_counter()
        result = run_rca(
            algo,
            case.metric_of_interest,
            case.related_metrics,
            3,
            case.anomalies,
            graph=None if case.graph is None else list(case.graph),
        )
        wall += time.perf_counter() - started
        rankings.append([key for key, _ in result.contributions])
    return score_rankings(algorithm.name, dict(params), rankings, cases, wall)


def score_rankings(
    name: str,
    params: dict[str, Any],
    rankings: Sequence[Sequence[str]],
    cases: Sequence[RcaCase],
    wall_s: float,
) -> RcaScore:
    """Score one ranking of slice keys per case (best first; only the first three count, as
    k = 3): the one scorer for algorithms and the trivial baselines alike."""
    top1 = top3 = complete = returned = 0
    for ranked, case in zip(rankings, cases, strict=True):
        first3 = set(ranked[:3])
        truth = set(case.root_causes)
        returned += min(len(ranked), 3)
        top1 += bool(ranked) and ranked[0] in truth
        top3 += bool(truth & first3)
        complete += truth <= first3
    n = len(cases)
    return RcaScore(
        algorithm=name,
        params=params,
        n_cases=n,
        top1=top1 / max(n, 1),
        top3=top3 / max(n, 1),
        complete_top3=complete / max(n, 1),
        mean_results=returned / max(n, 1),
        wall_s=wall_s,
    )


def describe_cases(cases: Sequence[RcaCase]) -> dict[str, float]:
    """What the cases look like, measured rather than configured: the figures that say how hard
    a set of cases is (reported next to the benchmark's results).

    - ``total_forecast_error``: standard deviation of log(actual / forecast) of the total at the
      non-anomalous points of the last day, the forecast being the median of the same time on
      the three previous days;
    - ``median_total_effect``/``min_total_effect``: |expected relative change of the total| caused
      by the anomaly; ``*_in_noise``: the same divided by ``total_forecast_error``;
    - ``median_root_share``: median share of the total carried by the root-cause slice(s) before
      the anomaly; ``small_root_causes``: share of cases whose root cause carries < 5 %;
    - ``root_explains_under_half``: share of cases where the root cause's change (actual minus
      that same forecast, summed over the anomaly times) is less than half of the total's: the
      rest is noise, drift or a global wobble, and an algorithm that looks for the slice that
      explains the change has to look past it;
    - ``two_element_cases``, ``slices_per_case``, ``anomaly_points``: means.
    """
    errors = []
    root_shares = []
    explains = []
    for case in cases:
        times, total = case.metric_of_interest.times, case.metric_of_interest.values
        per_day = DAY_S // int(times[1] - times[0])
        last_day = np.arange(max(times.shape[0] - per_day, 3 * per_day), times.shape[0])
        normal = last_day[~np.isin(times[last_day], case.anomalies)]
        with np.errstate(all="ignore"):
            forecast = np.median([total[normal - m * per_day] for m in (1, 2, 3)], axis=0)
            errors.append(np.log(total[normal] / forecast))
        before = times < case.anomalies[0]
        root = np.asarray(sum(s.values for s in case.related_metrics if s.key in case.root_causes))
        root_shares.append(float(np.mean(root[before] / total[before])))
        at = np.flatnonzero(np.isin(times, case.anomalies))
        explains.append(_change(root, at, per_day) / _change(total, at, per_day))
    error = float(np.std(np.concatenate(errors))) if errors else float("nan")
    effects = np.abs([case.total_effect for case in cases])
    shares = np.asarray(root_shares)
    return {
        "total_forecast_error": error,
        "median_total_effect": float(np.median(effects)),
        "min_total_effect": float(np.min(effects)),
        "median_effect_in_noise": float(np.median(effects)) / error,
        "min_effect_in_noise": float(np.min(effects)) / error,
        "median_root_share": float(np.median(shares)),
        "small_root_causes": float(np.mean(shares < 0.05)),
        "root_explains_under_half": float(np.mean(np.asarray(explains) < 0.5)),
        "two_element_cases": float(np.mean([len(case.root_causes) == 2 for case in cases])),
        "slices_per_case": float(np.mean([len(case.related_metrics) for case in cases])),
        "anomaly_points": float(np.mean([case.anomalies.shape[0] for case in cases])),
    }


def _change(values: np.ndarray, at: np.ndarray, per_day: int) -> float:
    """Sum over the points ``at`` of the value minus the median of the same time on the three
    previous days."""
    forecast = np.median([values[at - m * per_day] for m in (1, 2, 3)], axis=0)
    return float(np.sum(values[at] - forecast))


def _lognormal(rng: np.random.Generator, sigma: float, size: Any) -> np.ndarray:
    """Log-normal factors with mean 1."""
    return np.asarray(np.exp(sigma * rng.standard_normal(size) - 0.5 * sigma * sigma))


def _ar1(rng: np.random.Generator, rows: int, n: int, phi: float) -> np.ndarray:
    """``rows`` unit-variance AR(1) series of length ``n``."""
    from scipy.signal import lfilter

    shocks = rng.standard_normal((rows, n))
    shocks[:, 0] /= math.sqrt(1 - phi * phi)  # start in the stationary distribution
    return np.asarray(lfilter([math.sqrt(1 - phi * phi)], [1.0, -phi], shocks, axis=1))


def _generate_case(d: Difficulty, rng: np.random.Generator) -> RcaCase:
    n_names = d.n_dimensions
    if d.min_dimensions is not None:
        n_names = int(rng.integers(d.min_dimensions, d.n_dimensions + 1))
    names = DIMENSION_NAMES[:n_names]
    sizes = [int(rng.integers(d.values_per_dimension[0], d.values_per_dimension[1] + 1))
             for _ in names]  # fmt: skip
    n_dims = len(sizes)
    times = START_S + d.interval_s * np.arange(d.n_points, dtype=np.int64)

    # Base level of every leaf: product of element weights and an interaction factor.
    base = _lognormal(rng, d.interaction_sigma, sizes)
    for axis, size in enumerate(sizes):
        base *= _along(_lognormal(rng, d.share_sigma, (size, 1)), axis, n_dims)[..., 0]
    base *= d.total_level / base.sum()

    # Daily profile per element of the first dimension (its own phase: time zones).
    phases = rng.uniform(-math.pi / 2, math.pi / 2, sizes[0])
    day_angle = 2 * math.pi * ((times - START_S) % DAY_S) / DAY_S
    profile = 1 + d.seasonality * np.sin(day_angle[None, :] + phases[:, None])

    # The anomaly: consecutive points starting within the last day, and its root cause and
    # magnitude, drawn from the leaves' expected levels during the anomaly.
    length = int(rng.integers(d.anomaly_points[0], d.anomaly_points[1] + 1))
    last_day = max(d.n_points - DAY_S // d.interval_s, 0)
    start = int(rng.integers(last_day, d.n_points - length + 1))
    window = slice(start, start + length)
    expected = base * _along(profile[:, window].mean(axis=1, keepdims=True), 0, n_dims)[..., 0]
    root_axis, elements, factor, effect = _draw_root_cause(d, rng, expected)

    # Everything per point is built in log space, in float32 (the cube is the bulk of the work):
    # log(level) + log(daily profile) + element drift and noise + leaf noise, then one exp.
    log_leaves = np.log(base).astype(np.float32)[..., None] + _along(
        np.log(profile).astype(np.float32), 0, n_dims
    )
    # Per element of every dimension: a random-walk drift of its level and AR(1) noise, shared
    # by all the element's leaves.
    steps = d.element_drift / math.sqrt(DAY_S / d.interval_s)
    for axis, size in enumerate(sizes):
        wander = np.cumsum(steps * rng.standard_normal((size, d.n_points)), axis=1)
        wander -= wander.mean(axis=1, keepdims=True)
        noise = d.element_noise * _ar1(rng, size, d.n_points, d.noise_autocorrelation)
        log_leaves += _along(wander + noise - 0.5 * d.element_noise**2, axis, n_dims)
    # Count-like leaf noise: relative variance leaf_noise**2 + 1/level (level: the leaf's mean).
    leaf_sigma = np.sqrt(np.log1p(d.leaf_noise**2 + d.count_dispersion / np.maximum(base, 1e-3)))
    leaf_sigma = leaf_sigma.astype(np.float32)[..., None]
    shocks = rng.standard_normal(log_leaves.shape, dtype=np.float32)
    shocks *= leaf_sigma
    log_leaves += shocks
    log_leaves -= 0.5 * leaf_sigma**2
    leaves = np.exp(log_leaves, out=log_leaves)

    # Inject: each root-cause leaf changes by the magnitude times its own jitter (an outage does
    # not hit every leaf alike).
    index: list[Any] = [slice(None)] * n_dims
    index[root_axis] = list(elements)
    selected = leaves[tuple(index)]
    jitter = _lognormal(rng, d.effect_jitter, selected.shape[:-1])
    magnitude = np.full(selected.shape[:-1], factor - 1)
    if d.effect_spread > 0:
        magnitude = _uneven_change(rng, d.effect_spread, root_axis, expected[tuple(index)], factor)
    leaf_change = np.clip(magnitude * jitter, -0.99, None).astype(np.float32)
    selected[..., window] *= 1 + leaf_change[..., None]
    leaves[tuple(index)] = selected
    if d.global_wobble > 0:
        leaves[..., window] *= np.float32(_lognormal(rng, d.global_wobble, 1)[0])

    total = leaves.reshape(-1, d.n_points).sum(axis=0, dtype=np.float64)
    related: list[TimeSeries] = []
    for axis, (dim, size) in enumerate(zip(names, sizes, strict=True)):
        others = tuple(a for a in range(n_dims) if a != axis)
        marginal = leaves.sum(axis=others, dtype=np.float64)
        for element in range(size):
            series_values = np.ascontiguousarray(marginal[element])
            related.append(TimeSeries({dim: _element_name(dim, element)}, times, series_values))
    root_dim = names[root_axis]
    return RcaCase(
        metric_of_interest=TimeSeries({}, times, total),
        related_metrics=related,
        anomalies=times[window].copy(),
        root_causes=tuple(f"{root_dim}={_element_name(root_dim, e)}" for e in elements),
        root_dimension=root_dim,
        factor=factor,
        total_effect=effect,
    )


def _draw_root_cause(
    d: Difficulty, rng: np.random.Generator, base: np.ndarray
) -> tuple[int, tuple[int, ...], float, float]:
    """(axis, elements, factor, expected relative change of the total) such that the change is at
    least ``min_total_effect``; redraws the dimension/direction/elements until one qualifies."""
    total = float(base.sum())
    for _ in range(1000):
        axis = int(rng.integers(base.ndim))
        others = tuple(a for a in range(base.ndim) if a != axis)
        shares = base.sum(axis=others) / total
        n_elements = 2 if rng.random() < d.p_two_elements and shares.shape[0] >= 3 else 1
        up = bool(rng.random() < d.p_up)
        low, high = d.rise_range if up else d.drop_range
        groups: list[tuple[int, ...]]
        if n_elements == 1:
            groups = [(i,) for i in range(shares.shape[0])]
        else:
            groups = [(i, j) for i in range(shares.shape[0]) for j in range(i + 1, shares.shape[0])]
        group_shares = np.array([shares[list(g)].sum() for g in groups])
        # Leave at least one element of the dimension untouched in a two-element cause.
        eligible = np.flatnonzero(group_shares * high >= d.min_total_effect)
        if eligible.size == 0:
            continue
        group = groups[int(rng.choice(eligible))]
        share = float(group_shares[groups.index(group)])
        magnitude = float(rng.uniform(max(low, d.min_total_effect / share), high))
        factor = 1 + magnitude if up else 1 - magnitude
        return axis, group, factor, (factor - 1) * share
    raise ValueError("no root cause can reach min_total_effect with this difficulty")


def _uneven_change(
    rng: np.random.Generator, spread: float, root_axis: int, levels: np.ndarray, factor: float
) -> np.ndarray:
    """Per root-cause leaf, its change (factor - 1) when the outage hits the elements of the other
    dimensions unequally. w_i, the product of a log-normal weight per element of each other
    dimension, says how hard leaf i is hit: a rise adds c * w_i * (factor - 1), a drop keeps
    ``factor ** (c * w_i)`` (a power, so a hard-hit leaf tends to 0 instead of going negative),
    with c chosen so that the level-weighted mean of the leaves' factors is still ``factor``: the
    root cause's own change, and so the expected change of the total, is the one drawn."""
    weights = np.ones(levels.shape)
    for axis, size in enumerate(levels.shape):
        if axis != root_axis:
            weights = (
                weights * _along(_lognormal(rng, spread, (size, 1)), axis, levels.ndim)[..., 0]
            )
    if factor >= 1:
        return np.asarray((factor - 1) * weights * levels.sum() / (levels * weights).sum())
    log_factor = math.log(factor)
    target = factor * float(levels.sum())

    def kept(c: float) -> float:
        return float((levels * np.exp(c * log_factor * weights)).sum())

    # kept(c) falls from sum(levels) at c = 0 towards 0; bracket the target, then bisect.
    low, high = 0.0, 1.0
    while kept(high) > target:
        low, high = high, 2 * high
    for _ in range(60):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if kept(middle) > target else (low, middle)
    return np.asarray(np.expm1(0.5 * (low + high) * log_factor * weights))


def _along(per_element: np.ndarray, axis: int, n_dims: int) -> np.ndarray:
    """(elements, points) reshaped to broadcast against the cube (elements on ``axis``, points
    last)."""
    shape = [1] * n_dims + [per_element.shape[-1]]
    shape[axis] = per_element.shape[0]
    return per_element.reshape(shape)


def _element_name(dimension: str, element: int) -> str:
    names = ELEMENT_NAMES.get(dimension, ())
    return names[element] if element < len(names) else f"{dimension}{element}"

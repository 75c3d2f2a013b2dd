"""drift: PSI and KS of a recent window against a reference, checked against independent
computations (numpy histograms, scipy's ks_2samp), streamed exactly like a batch call, one
detection per drift, crafted references refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from warden_algos.algorithms.drift import Drift
from warden_algos.interfaces import InvalidInput, run_detect_next, run_fit
from warden_algos.interfaces.state import Seen, decode_state, encode_state

T0 = 1_700_000_000


def series(n: int = 6000, seed: int = 0, change_at: int = 4000, **change: float) -> Any:
    rng = np.random.default_rng(seed)
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    values = rng.normal(10.0, 1.0, n)
    after = rng.normal(10.0 + change.get("shift", 0.0), change.get("scale", 1.0), n - change_at)
    values[change_at:] = after
    return times, values


def statistic(method: str, values: np.ndarray, window: int, reference: int, at: int) -> float:
    """The drift statistic at point ``at`` (its threshold ratio, times the threshold)."""
    algorithm = Drift(method=method, window=window, reference_points=reference)
    state = algorithm.fit([], np.arange(at), values[:at])
    scores = algorithm.scores(state, values[at : at + 1])
    p = algorithm.params
    if method == "psi":
        return float(scores[0] * p.psi_threshold)
    return float(scores[0])


def test_psi_is_the_population_stability_index_over_the_reference_deciles() -> None:
    _, values = series(scale=1.5)
    reference, window, at = 2000, 300, 5000
    got = statistic("psi", values, window, reference, at)
    edges = np.quantile(values[:reference], np.linspace(0, 1, 11))[1:-1]
    expected = np.bincount(np.searchsorted(edges, values[:reference], side="left"), minlength=10)
    recent = values[at - window + 1 : at + 1]
    actual = np.bincount(np.searchsorted(edges, recent, side="left"), minlength=10)
    e = np.maximum(expected / reference, 1e-4)
    a = np.maximum(actual / window, 1e-4)
    assert got == pytest.approx(float(((a - e) * np.log(a / e)).sum()), rel=1e-9)
    assert got > 0.25  # a 1.5x wider distribution is a significant shift


def test_ks_reads_the_largest_cdf_gap_within_one_grid_step_of_scipy() -> None:
    from scipy.stats import ks_2samp

    _, values = series(shift=0.4)
    reference, window, at = 2000, 400, 5500
    ratio = statistic("ks", values, window, reference, at)
    size = np.sqrt((window + reference) / (window * reference))
    critical = np.sqrt(-np.log(0.001 / 2) / 2) * size
    exact = ks_2samp(values[at - window + 1 : at + 1], values[:reference]).statistic
    assert ratio * critical == pytest.approx(exact, abs=0.01)
    assert ratio > 1  # a 0.4-sigma shift of the mean, over 400 points


@pytest.mark.parametrize("method", ["psi", "ks"])
def test_a_stationary_series_has_no_drift_and_a_changed_one_one_detection(method: str) -> None:
    times, values = series(scale=1.6)
    assert Drift(method=method).detect([], times[:4000], values[:4000]).timestamps.size == 0
    found = Drift(method=method).detect([], times, values)
    assert found.timestamps.size == 1  # one incident, however it hovers at the threshold
    row = int(np.searchsorted(times, found.timestamps[0]))
    assert 4000 < row < 4000 + 2 * Drift.Params().window
    every = Drift(method=method, every_point=True).detect([], times, values)
    assert every.timestamps.size > 100 and every.timestamps[0] == found.timestamps[0]


@pytest.mark.parametrize("cooldown", [0, 50])
@pytest.mark.parametrize("method", ["psi", "ks"])
def test_streaming_in_chunks_gives_one_calls_detections(method: str, cooldown: int) -> None:
    times, values = series(shift=0.5, change_at=3500)
    values[3600:3650] = np.nan
    algorithm = Drift(method=method, reference_points=1500, window=200, cooldown=cooldown)
    whole = algorithm.detect([], times, values)
    # the reference completes inside a chunk: fit on fewer points than it needs
    fitted = run_fit(algorithm, times[:700], values[:700])
    state = fitted.state
    found: list[int] = []
    scores: list[float] = []
    rng = np.random.default_rng(1)
    start = 700
    while start < times.shape[0]:
        end = min(times.shape[0], start + int(rng.integers(1, 400)))
        part, after = run_detect_next(algorithm, times[start:end], values[start:end], state)
        assert after is not None
        state = after.state
        found += part.timestamps.tolist()
        scores += part.scores.tolist()
        start = end
    assert found == whole.timestamps.tolist() and len(found) >= 1
    # a chunk boundary inside an incident reports its highest score so far, never a higher one
    assert all(s <= w + 1e-12 for s, w in zip(scores, whole.scores.tolist(), strict=True))


def test_a_window_with_too_few_valid_points_is_not_scored() -> None:
    times, values = series(scale=2.0)
    values[4000:4300] = np.nan
    values[4300:] += 0.0
    found = Drift(min_valid=0.9, every_point=True).detect([], times, values)
    rows = np.searchsorted(times, found.timestamps)
    # windows reaching into the gap hold under 90% valid points until 0.1 * 288 points after it
    assert not ((rows >= 4000) & (rows < 4300 + int(0.9 * 288))).any()
    assert rows.size > 0


def recrafted(blob: bytes, **changes: Any) -> bytes:
    decoded = decode_state(blob)
    state = Drift.State.model_validate({**decoded.fields, **changes})
    info = decoded.info
    return encode_state(info.algorithm, info.state_version, info.params, state, Seen(*info.seen))


@pytest.mark.parametrize(
    "changes",
    [
        {"grid": np.linspace(10, 0, 101)},  # decreasing quantiles
        {"grid": np.full(101, np.nan)},
        {"grid": np.zeros(5), "grid_cdf": np.zeros(5)},
        {"tail": np.zeros(3)},
        {"reference_values": np.zeros(5000)},  # more than reference_points
    ],
    ids=["decreasing", "nan", "short", "tail", "oversized reference"],
)
def test_a_crafted_reference_is_refused(changes: dict[str, Any]) -> None:
    times, values = series()
    blob = run_fit(Drift(), times[:3000], values[:3000]).state
    with pytest.raises(InvalidInput) as refused:
        run_detect_next(Drift(), times[3000:3100], values[3000:3100], recrafted(blob, **changes))
    assert refused.value.field == "state"


def test_fit_then_stream_keeps_an_incident_open_across_the_fit() -> None:
    """An incident still open at the end of the fitted history continues: the first streamed
    points do not report it again (the state carries the incident and the cooldown)."""
    times, values = series(n=3000, change_at=1000, scale=2.0)
    algorithm = Drift(reference_points=500, window=100, cooldown=288)
    whole = algorithm.detect([], times, values)
    for prefix in (1050, 1150, 1250, 1400):
        fitted = run_fit(algorithm, times[:prefix], values[:prefix])
        streamed, _ = run_detect_next(algorithm, times[prefix:], values[prefix:], fitted.state)
        before = whole.timestamps[whole.timestamps < times[prefix]].tolist()
        assert before + streamed.timestamps.tolist() == whole.timestamps.tolist(), prefix


@pytest.mark.parametrize(
    "changes",
    [
        {"since_flagged": 2**62},
        {"grid_cdf": np.full(101, 1e308)},
        {"grid_cdf": np.linspace(1, 0, 101)},
        {"tail": np.full(287, np.inf)},
    ],
    ids=["since flagged", "cdf beyond 1", "cdf decreasing", "infinite tail"],
)
def test_crafted_counts_and_shares_are_refused(changes: dict[str, Any]) -> None:
    times, values = series()
    blob = run_fit(Drift(), times[:3000], values[:3000]).state
    with pytest.raises(InvalidInput) as refused:
        run_detect_next(Drift(), times[3000:3100], values[3000:3100], recrafted(blob, **changes))
    assert refused.value.field == "state"

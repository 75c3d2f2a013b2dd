"""The RCA evaluation: the generator's named settings, and the trivial baselines beside the
algorithms (rca_synthetic, rca_baselines)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from warden_algos.evaluation.rca_baselines import (
    BASELINES,
    evaluate_baseline,
    largest_absolute_change,
    largest_relative_change,
    random_ranking,
    relative_change,
)
from warden_algos.evaluation.rca_synthetic import (
    HARD,
    NOISY,
    SETTINGS,
    UNEVEN,
    WOBBLE,
    Difficulty,
    RcaCase,
    describe_cases,
    generate_cases,
    score_rankings,
)
from warden_algos.interfaces import TimeSeries

from .test_algorithms_rca import _warnings_are_errors

__all__ = ["_warnings_are_errors"]  # the autouse fixture, shared: warnings are errors here too

DAY = 86_400
HOUR = 3_600
T0 = 1_700_006_400  # a day boundary


def summary(cases: Sequence[RcaCase]) -> str:
    """What a case is, coarse enough not to depend on the last bits of float32 arithmetic: the
    random draws (root cause, factor, anomaly times, slices) and the slices' sums to 4 digits."""
    out = [
        (
            case.root_causes,
            case.root_dimension,
            f"{case.factor:.9f}",
            case.anomalies.tolist(),
            [s.key for s in case.related_metrics],
            [
                f"{float(s.values.sum()):.4g}"
                for s in [case.metric_of_interest, *case.related_metrics]
            ],
        )
        for case in cases
    ]
    return hashlib.sha256(repr(out).encode()).hexdigest()[:16]


# --- the generator's settings ---------------------------------------------------------------------


def test_the_existing_settings_make_the_same_cases_as_before_the_new_fields() -> None:
    """The figures computed with the generator before min_dimensions, count_dispersion,
    effect_spread and global_wobble existed (commit 60cc415): their defaults draw nothing, so the
    results of the default and hard settings stay comparable across that change."""
    assert summary(generate_cases(Difficulty(), 6, 0)) == "38a560e879526efe"
    assert summary(generate_cases(HARD, 6, 0)) == "436fb4c832819052"


@pytest.mark.parametrize("difficulty", [UNEVEN, WOBBLE, NOISY], ids=["uneven", "wobble", "noisy"])
def test_the_new_settings_are_deterministic(difficulty: Difficulty) -> None:
    first, again = generate_cases(difficulty, 3, 11), generate_cases(difficulty, 3, 11)
    assert summary(first) == summary(again)
    for a, b in zip(first, again, strict=True):
        for sa, sb in zip(a.related_metrics, b.related_metrics, strict=True):
            assert np.array_equal(sa.values, sb.values)
    assert summary(generate_cases(difficulty, 3, 12)) != summary(first)


def at_anomalies(case: RcaCase) -> np.ndarray:
    return np.isin(case.metric_of_interest.times, case.anomalies)


def test_a_global_wobble_moves_every_slice_by_one_factor_at_the_anomaly_times_only() -> None:
    """One case from the same seed with and without the wobble: its draw comes last, so the two
    differ by exactly one common factor, at the anomaly times and nowhere else."""
    factors = []
    for seed in range(5):
        (plain,) = generate_cases(Difficulty(), 1, seed)
        (wobbly,) = generate_cases(Difficulty(global_wobble=0.3), 1, seed)
        at = at_anomalies(plain)
        assert plain.root_causes == wobbly.root_causes
        ratios = []
        for a, b in zip(plain.related_metrics, wobbly.related_metrics, strict=True):
            assert np.array_equal(a.values[~at], b.values[~at])
            ratios.append(b.values[at] / a.values[at])
        ratio = np.concatenate(ratios)
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)  # float32 leaves
        factors.append(float(ratio[0]))
    assert all(abs(math.log(f)) > 0.01 for f in factors)  # it moved every time
    assert min(factors) < 1 < max(factors)  # both ways


def test_uneven_outages_keep_the_root_causes_change_and_spread_it_unequally() -> None:
    """Same seed with and without effect_spread: outside the anomaly nothing differs; at it, the
    root cause's own slice changes about as much (the level-weighted change is kept), the other
    elements of its dimension not at all, and the slices of the other dimensions by different
    factors (the outage hits some of them harder)."""
    spreads = []
    for seed in range(6):
        (even,) = generate_cases(Difficulty(), 1, seed)
        (uneven,) = generate_cases(Difficulty(effect_spread=0.8), 1, seed)
        at = at_anomalies(even)
        assert even.root_causes == uneven.root_causes and even.total_effect == uneven.total_effect
        root_change = []
        others = []
        for a, b in zip(even.related_metrics, uneven.related_metrics, strict=True):
            assert np.array_equal(a.values[~at], b.values[~at])
            dimension = a.key.split("=")[0]
            ratio = b.values[at] / a.values[at]
            if a.key in even.root_causes:
                root_change.append(float(b.values[at].sum() / a.values[at].sum()))
            elif dimension == even.root_dimension:
                np.testing.assert_allclose(ratio, 1.0, rtol=1e-5)
            else:
                others.append(float(np.mean(ratio)))
        assert all(0.6 < change < 1.6 for change in root_change), root_change
        spreads.append(float(np.std(np.log(others))))
    assert float(np.median(spreads)) > 0.05  # without the spread every ratio would be 1


def test_noisy_cases_are_noisier_and_have_two_to_four_dimensions() -> None:
    default = describe_cases(generate_cases(Difficulty(), 12, 3))
    cases = generate_cases(NOISY, 12, 3)
    noisy = describe_cases(cases)
    assert noisy["total_forecast_error"] > 2 * default["total_forecast_error"]
    counts = {len({s.key.split("=")[0] for s in case.related_metrics}) for case in cases}
    assert counts <= {2, 3, 4} and len(counts) >= 2


def test_count_dispersion_makes_small_slices_noisier() -> None:
    """Over-dispersed counts: the leaf noise's 1/level term is multiplied, so the forecast error
    of the smallest slices grows (the big ones are dominated by element noise)."""

    def small_slice_error(difficulty: Difficulty) -> float:
        errors = []
        for case in generate_cases(difficulty, 4, 5):
            per_day = DAY // 600
            smallest = min(case.related_metrics, key=lambda s: float(s.values.mean()))
            v = smallest.values
            errors.append(np.std(np.log(v[per_day:-per_day] / v[: -2 * per_day])))
        return float(np.mean(errors))

    small = Difficulty(total_level=2_000.0)
    assert small_slice_error(small.model_copy(update={"count_dispersion": 10.0})) > (
        1.5 * small_slice_error(small)
    )


def test_a_dominating_wobble_leaves_the_root_cause_explaining_less_than_half() -> None:
    assert describe_cases(generate_cases(Difficulty(), 20, 4))["root_explains_under_half"] == 0
    assert describe_cases(generate_cases(WOBBLE, 20, 4))["root_explains_under_half"] >= 0.15


def test_the_named_settings_are_the_benchmarks_and_the_clis() -> None:
    assert {
        "default": Difficulty(),
        "hard": HARD,
        "uneven": UNEVEN,
        "wobble": WOBBLE,
        "noisy": NOISY,
    } == SETTINGS


def test_new_fields_are_checked() -> None:
    with pytest.raises(ValidationError):
        Difficulty(min_dimensions=5, n_dimensions=4)
    with pytest.raises(ValidationError):
        Difficulty(global_wobble=-0.1)
    with pytest.raises(ValidationError):
        Difficulty(effect_spread=5.0)


# --- the trivial baselines ------------------------------------------------------------------------


def hand_case(
    history: dict[str, tuple[float, ...]],
    now: dict[str, float],
    root: tuple[str, ...],
    *,
    outside: dict[str, float] | None = None,
) -> RcaCase:
    """Hourly slices over four days: ``history[key]`` gives the slice's value at the anomaly's
    hour on each of the three previous days, ``outside`` (default: the first of those) its value
    at every other hour, ``now`` its value at the anomaly (the last point)."""
    times = T0 + HOUR * np.arange(96, dtype=np.int64)
    related = []
    for key, earlier in history.items():
        values = np.full(96, (outside or {}).get(key, earlier[0]))
        values[[23, 47, 71]] = earlier
        values[95] = now[key]
        dimension, element = key.split("=")
        related.append(TimeSeries({dimension: element}, times, values))
    total = TimeSeries({}, times, sum(s.values for s in related))
    return RcaCase(total, related, times[-1:], root, root[0].split("=")[0], 1.0, 0.1)


def test_the_change_baselines_rank_on_the_seasonal_forecast() -> None:
    """country=US is big and rose 10 % (+100), FR small and lost half (-20); DE's level at other
    hours says it collapsed, but at this hour it is always at 5, so by the seasonal forecast (the
    median of the same hour on the three previous days) it did not move at all."""
    case = hand_case(
        {
            "country=US": (1000.0, 990.0, 1010.0),
            "country=FR": (40.0, 42.0, 38.0),
            "country=DE": (5.0, 5.0, 5.0),
        },
        {"country=US": 1100.0, "country=FR": 20.0, "country=DE": 5.0},
        ("country=FR",),
        outside={"country=DE": 500.0},
    )
    assert largest_absolute_change(case) == ["country=US", "country=FR", "country=DE"]
    assert largest_relative_change(case) == ["country=FR", "country=US", "country=DE"]
    score = evaluate_baseline("relative", largest_relative_change, [case])
    assert (score.top1, score.top3, score.complete_top3, score.n_cases) == (1.0, 1.0, 1.0, 1)
    absolute = evaluate_baseline("absolute", largest_absolute_change, [case])
    assert (absolute.top1, absolute.top3, absolute.mean_results) == (0.0, 1.0, 3.0)
    assert absolute.wall_s > 0 and absolute.ms_per_case == 1000 * absolute.wall_s


def test_relative_change_of_a_slice_from_nothing() -> None:
    assert relative_change(0.0, 5.0) == math.inf
    assert relative_change(0.0, 0.0) == 0.0
    assert relative_change(-10.0, -5.0) == pytest.approx(0.5)


def test_random_ranking_is_a_seeded_permutation_of_the_slices() -> None:
    cases = generate_cases(Difficulty(), 3, 1)
    keys = sorted(s.key for s in cases[0].related_metrics)
    first = random_ranking(cases[0])
    assert sorted(first) == keys and first == random_ranking(cases[0])
    assert random_ranking(cases[0], seed=1) != first
    # A case keeps its order whatever list it is evaluated in.
    assert evaluate_baseline("r", random_ranking, cases[:1]).top1 == float(
        random_ranking(cases[0])[0] in cases[0].root_causes
    )


def test_scoring_counts_two_element_causes_as_the_algorithms_are() -> None:
    case = hand_case(
        {
            "country=US": (10.0,) * 3,
            "country=FR": (10.0,) * 3,
            "country=DE": (10.0,) * 3,
            "country=IT": (10.0,) * 3,
        },
        {"country=US": 10.0, "country=FR": 10.0, "country=DE": 10.0, "country=IT": 10.0},
        ("country=DE", "country=IT"),
    )
    rankings = [
        ["country=DE", "country=US", "country=FR", "country=IT"],  # top-1, not complete
        ["country=US", "country=IT", "country=DE"],  # top-3 and complete, not top-1
        [],  # nothing returned
    ]
    score = score_rankings("hand", {}, rankings, [case] * 3, 0.3)
    assert score.top1 == pytest.approx(1 / 3)
    assert score.top3 == pytest.approx(2 / 3)
    assert score.complete_top3 == pytest.approx(1 / 3)
    assert score.mean_results == pytest.approx(2.0)  # only the first three count
    assert score.ms_per_case == pytest.approx(100.0)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(
        st.tuples(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 1e6)),
        min_size=1,
        max_size=5,
    )
)
def test_every_baseline_ranks_each_usable_slice_once(
    values: list[tuple[float, float, float, float]],
) -> None:
    history = {f"country=c{i}": row[:3] for i, row in enumerate(values)}
    now = {f"country=c{i}": row[3] for i, row in enumerate(values)}
    case = hand_case(history, now, ("country=c0",))
    for _, ranking in BASELINES:
        ranked = ranking(case)
        assert sorted(ranked) == sorted(history)

"""The synthetic multivariate generator: repeatable, and its ground truth is where the values
were changed, of the kind it says (a correlation break stays in range, the columns are
correlated). No aeon here: the benchmark's metrics are not needed to check the data."""

from __future__ import annotations

import numpy as np
import pytest

from warden_algos.evaluation.synthetic_multivariate import (
    HARD,
    KINDS,
    Setting,
    describe_cases,
    generate_case,
    generate_cases,
)

SETTINGS = {"default": Setting(), "hard": HARD}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_seed_always_gives_the_same_case_and_another_seed_another(name: str) -> None:
    setting = SETTINGS[name]
    first, again, other = (generate_case(setting, seed) for seed in (7, 7, 8))
    assert np.array_equal(first.matrix, again.matrix)
    assert first.anomalies == again.anomalies
    assert not np.allclose(first.matrix, other.matrix)
    assert first.anomalies != other.anomalies
    assert [case.seed for case in generate_cases(setting, 3, 40)] == [40, 41, 42]
    assert np.array_equal(generate_cases(setting, 2, 7)[0].matrix, first.matrix)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_ground_truth_is_in_the_test_stretch_and_is_exactly_where_values_changed(
    name: str,
) -> None:
    setting = SETTINGS[name]
    for seed in range(5):
        case = generate_case(setting, seed)
        n, m = case.matrix.shape
        assert n == setting.train_points + setting.test_points and m == setting.n_columns
        assert case.timestamps.shape == (n,) and (np.diff(case.timestamps) > 0).all()
        assert np.isfinite(case.matrix).all()
        assert sorted(a.kind for a in case.anomalies) == sorted(
            kind for kind, count in setting.counts().items() for _ in range(count)
        )
        changed = case.matrix != case.clean
        truth = np.zeros_like(changed)
        previous_end = case.train_points - 1
        for a in case.anomalies:  # in start order, apart by min_gap, inside the test stretch
            assert a.start - previous_end > setting.min_gap
            assert a.start <= a.end < n - setting.min_gap
            assert 0 <= a.column < m
            truth[a.start : a.end + 1, a.column] = True
            previous_end = a.end
        # nothing changed outside the ground truth; inside, every point but a break's
        # (which may clip back onto its own value) and a shape's zero crossings moved
        assert not (changed & ~truth).any()
        for a in case.anomalies:
            moved = changed[a.start : a.end + 1, a.column]
            if a.kind in ("point", "drift") or a.shape in ("shift", "bump"):
                assert moved.all(), a
            else:
                assert moved.mean() > 0.4, a
        labels = case.test_labels()
        assert labels.sum() == sum(a.end - a.start + 1 for a in case.anomalies)
        assert np.array_equal(labels, truth[case.train_points :].any(axis=1))


def test_each_kind_changes_its_column_as_documented() -> None:
    setting = Setting()
    seen = set()
    for seed in range(20):
        case = generate_case(setting, seed)
        for a in case.anomalies:
            seen.add(a.kind)
            rows = slice(a.start, a.end + 1)
            delta = (case.matrix[rows, a.column] - case.clean[rows, a.column]) / case.spread[
                a.column
            ]
            if a.kind == "point":
                assert a.start == a.end
                assert setting.point_size[0] <= abs(delta[0]) <= setting.point_size[1]
            elif a.kind == "drift":  # a linear ramp up to its size, one sign
                assert np.allclose(np.abs(delta[-1]), a.size)
                assert np.allclose(np.diff(delta), delta[0])
            elif a.kind == "collective":
                assert np.abs(delta).max() <= a.size + 1e-9
                assert setting.collective_points[0] <= a.end - a.start + 1
    assert seen == set(KINDS)


def test_a_correlation_break_keeps_its_column_in_its_training_range_but_not_its_factors() -> None:
    for seed in range(20):
        case = generate_case(Setting(), seed)
        train = case.clean[: case.train_points]
        low, high = train.min(axis=0), train.max(axis=0)
        (a,) = [a for a in case.anomalies if a.kind == "correlation_break"]
        values = case.matrix[a.start : a.end + 1, a.column]
        assert (values >= low[a.column]).all() and (values <= high[a.column]).all()
        # the column left its factors: it strays several noise sigmas from its clean value
        departure = np.abs(values - case.clean[a.start : a.end + 1, a.column])
        assert np.median(departure) / case.noise_unit[a.column] > 0.5
        assert departure.max() / case.noise_unit[a.column] > 2.0


def test_the_clean_columns_are_correlated_through_their_factors() -> None:
    cases = generate_cases(Setting(), 10, 0)
    measured = describe_cases(cases)
    assert measured["mean_abs_correlation"] > 0.3
    # factors + seasonal sine and cosine carry nearly all the standardised variance
    assert measured["latent_variance"] > 0.9
    # the break is nearly invisible column by column
    assert measured["break_visible"] < 0.05
    hard = describe_cases(generate_cases(HARD, 10, 0))
    assert hard["mean_abs_correlation"] > 0.2
    assert hard["break_departure_noise"] < measured["break_departure_noise"]
    # independent columns would show none of that
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((1440, 8))
    corr = np.atleast_2d(np.corrcoef(noise.T))[np.triu_indices(8, 1)]
    assert np.mean(np.abs(corr)) < 0.1


def test_a_setting_that_cannot_hold_its_anomalies_is_refused() -> None:
    with pytest.raises(ValueError, match="test_points"):
        Setting(test_points=100)
    with pytest.raises(ValueError, match="n_factors"):
        Setting(n_columns=2, n_factors=3)
    with pytest.raises(ValueError, match="point_size"):
        Setting(point_size=(4.0, 2.0))

"""Multivariate detection: a matrix of named columns in, detections with each column's share out.
The input and answer are checked as one series' are; the learned detectors fit and stream a
matrix, attribute a detection to the column that drove it, and refuse a state of other columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from warden_algos.algorithms.autoencoder import Autoencoder
from warden_algos.algorithms.isolation_forest import IsolationForest
from warden_algos.algorithms.ksigma import KSigma
from warden_algos.algorithms.one_class_svm import OneClassSVM
from warden_algos.interfaces import InvalidInput
from warden_algos.interfaces.errors import AlgorithmFailed, IncompatibleState, UnknownAlgorithm
from warden_algos.interfaces.multivariate import MultivariateResult, check_matrix_result
from warden_algos.interfaces.run_matrix import (
    run_detect_matrix,
    run_detect_matrix_next,
    run_fit_matrix,
)
from warden_algos.interfaces.run_state import run_detect_next, run_fit
from warden_algos.interfaces.state import (
    AlgorithmState,
    Seen,
    StateArray,
    decode_state,
    encode_state,
)
from warden_algos.learned.svm import fit_svm, svm_log_scores, svm_scores

T0 = 1_700_000_000
COLUMNS = ["inlet", "outlet", "pump"]


def machine(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three sensors of one machine following one daily cycle (correlated), small noise."""
    rng = np.random.default_rng(seed)
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    cycle = np.sin(np.arange(n) * 2 * np.pi / 288)
    matrix = np.column_stack([10 + cycle, 5 + 2 * cycle, 3 - cycle]) + rng.normal(0, 0.05, (n, 3))
    return times, matrix


def broken(matrix: np.ndarray) -> np.ndarray:
    """The outlet stops following the cycle for 20 rows (each value still in its range), and
    the pump spikes once."""
    out = matrix.copy()
    rows = np.arange(2500, 2520)
    out[rows, 1] = 5 - 2 * np.sin(rows * 2 * np.pi / 288)
    out[2700, 2] += 1.5
    return out


# -- the contract -------------------------------------------------------------------------------


def test_one_detection_per_run_carries_the_shares_of_its_highest_point() -> None:
    times = np.arange(10, dtype=np.int64)
    flags = np.zeros(10, dtype=bool)
    flags[[2, 3, 4, 8]] = True
    scores = np.array([0, 0, 1.0, 5.0, 2.0, 0, 0, 0, 3.0, 0])
    shares = np.tile([0.5, 0.5], (10, 1))
    shares[3] = [0.9, 0.1]
    shares[8] = [0.2, 0.8]
    result = MultivariateResult.from_flags(times, flags, scores, shares)
    assert result.timestamps.tolist() == [2, 8]
    assert result.scores.tolist() == [5.0, 3.0]
    assert result.contributions.tolist() == [[0.9, 0.1], [0.2, 0.8]]
    every = MultivariateResult.from_flags(times, flags, scores, shares, every_point=True)
    assert every.timestamps.tolist() == [2, 3, 4, 8]
    continued = MultivariateResult.from_flags(
        times[2:], flags[2:], scores[2:], shares[2:], open_incident=True
    )
    assert continued.timestamps.tolist() == [8]  # the run at the chunk's start was reported


@pytest.mark.parametrize(
    ("columns", "matrix", "field"),
    [
        ([], np.zeros((3, 0)), "detect.columns"),
        (["a", "a"], np.zeros((3, 2)), "detect.columns[1]"),
        (["a", ""], np.zeros((3, 2)), "detect.columns[1]"),
        (["a", "b"], np.zeros((3, 3)), "detect.matrix"),
        (["a", "b"], np.zeros((4, 2)), "detect.matrix"),
        (["a", "b"], np.array([[1.0, 2.0], [np.inf, 1.0], [0.0, 0.0]]), "detect.matrix[1][0]"),
        (["a", "b"], [[1.0, 2.0], [1.0], [0.0, 0.0]], "detect.matrix"),
        ([f"c{i}" for i in range(257)], np.zeros((3, 257)), "detect.columns"),
    ],
    ids=["none", "twice", "empty name", "width", "rows", "infinite", "ragged", "too many"],
)
def test_a_bad_matrix_is_refused_naming_the_field(
    columns: list[str], matrix: Any, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        run_detect_matrix(IsolationForest(), np.arange(3) + T0, matrix, columns)
    assert refused.value.field == field


def test_missing_cells_are_allowed_and_silence_their_rows() -> None:
    times, matrix = machine(1500)
    matrix[1200:1210, 0] = np.nan
    matrix[1300, 2] = 50.0
    result = run_detect_matrix(OneClassSVM(sigmas=6.0), times, matrix, COLUMNS)
    rows = np.searchsorted(times, result.timestamps).tolist()
    assert 1300 in rows
    assert not any(1200 <= r < 1210 for r in rows)  # a row with a missing cell


def test_an_answer_whose_shares_do_not_sum_to_one_is_an_algorithm_failure() -> None:
    times = np.arange(5, dtype=np.int64)
    bad = MultivariateResult(times[:1], np.array([1.0]), np.array([[0.5, 0.2]]))
    with pytest.raises(AlgorithmFailed, match="sum to 1"):
        check_matrix_result(bad, times, 2)
    negative = MultivariateResult(times[:1], np.array([1.0]), np.array([[1.5, -0.5]]))
    with pytest.raises(AlgorithmFailed, match="non-negative"):
        check_matrix_result(negative, times, 2)


def test_a_univariate_detector_says_it_cannot_score_a_matrix() -> None:
    times, matrix = machine(100)
    with pytest.raises(UnknownAlgorithm, match="cannot score a matrix"):
        run_detect_matrix(KSigma(), times, matrix, COLUMNS)


# -- the learned detectors on a matrix -------------------------------------------------------------


@pytest.mark.parametrize("cls", [IsolationForest, OneClassSVM, Autoencoder], ids=lambda c: c.name)
def test_a_broken_correlation_and_a_spike_are_found_and_attributed(cls: Any) -> None:
    """At the defaults: whitened rows show the outlet leaving the cycle the others follow, and
    repairing the outlet (its value as the others predict it) is what makes the row normal."""
    times, matrix = machine()
    cells = broken(matrix)
    algorithm = cls()
    fitted = run_fit_matrix(algorithm, times[:2000], cells[:2000], COLUMNS)
    result, _ = run_detect_matrix_next(algorithm, times[2000:], cells[2000:], COLUMNS, fitted.state)
    rows = np.searchsorted(times, result.timestamps)
    blamed = dict(zip(rows.tolist(), result.contributions.argmax(axis=1).tolist(), strict=True))
    in_break = [r for r in blamed if 2500 <= r < 2522]
    assert in_break and all(COLUMNS[blamed[r]] == "outlet" for r in in_break), blamed
    assert COLUMNS[blamed[2700]] == "pump", blamed
    np.testing.assert_allclose(result.contributions.sum(axis=1), 1.0)


def test_the_forest_attributes_a_gross_spike_to_its_column() -> None:
    times, matrix = machine(2500)
    matrix[2300, 0] += 20.0
    result = run_detect_matrix(IsolationForest(), times, matrix, COLUMNS)
    rows = np.searchsorted(times, result.timestamps).tolist()
    assert 2300 in rows
    assert COLUMNS[int(result.contributions[rows.index(2300)].argmax())] == "inlet"


def test_the_autoencoder_returns_its_reconstruction_of_every_cell() -> None:
    times, matrix = machine(2000)
    result = run_detect_matrix(Autoencoder(), times, matrix, COLUMNS)
    assert result.expected is not None and result.expected.shape == matrix.shape
    assert np.isfinite(result.expected).all()  # a row is scored alone: the first one too
    error = np.abs(result.expected - matrix)
    assert np.median(error) < 0.1


@pytest.mark.parametrize("cls", [IsolationForest, OneClassSVM, Autoencoder], ids=lambda c: c.name)
def test_a_matrix_streams_in_chunks_like_one_call(cls: Any) -> None:
    times, matrix = machine(2600, seed=3)
    cells = broken(np.vstack([matrix, machine(200, seed=4)[1]]))[:2600]
    algorithm = cls(every_point=True, sigmas=3.0)  # low: many detections to compare
    fitted = run_fit_matrix(algorithm, times[:2000], cells[:2000], COLUMNS)
    whole, _ = run_detect_matrix_next(algorithm, times[2000:], cells[2000:], COLUMNS, fitted.state)
    state, found, shares = fitted.state, [], []
    start = 2000
    rng = np.random.default_rng(0)
    while start < 2600:
        end = min(2600, start + int(rng.integers(1, 70)))
        part, after = run_detect_matrix_next(
            algorithm, times[start:end], cells[start:end], COLUMNS, state
        )
        assert after is not None
        state = after.state
        found += part.timestamps.tolist()
        shares += part.contributions.tolist()
        start = end
    assert found == whole.timestamps.tolist() and found
    assert shares == whole.contributions.tolist()


def test_a_state_is_refused_for_other_columns_or_for_one_series() -> None:
    times, matrix = machine(1200)
    algorithm = OneClassSVM()
    fitted = run_fit_matrix(algorithm, times[:1000], matrix[:1000], COLUMNS)
    later = times[1000:]
    with pytest.raises(IncompatibleState, match="same order"):
        run_detect_matrix_next(algorithm, later, matrix[1000:, ::-1], COLUMNS[::-1], fitted.state)
    with pytest.raises(IncompatibleState, match="not one series"):
        run_detect_next(algorithm, later, matrix[1000:, 0], fitted.state)
    single = run_fit(algorithm, times[:1000], matrix[:1000, 0])
    with pytest.raises(IncompatibleState, match="one series"):
        run_detect_matrix_next(algorithm, later, matrix[1000:], COLUMNS, single.state)


def test_a_number_beyond_float64_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidInput) as refused:
        run_detect_matrix(IsolationForest(), [T0, T0 + 1], [[10**400, 1], [1, 2]], ["a", "b"])
    assert refused.value.field == "detect.matrix"


def test_a_one_column_matrix_is_a_matrix() -> None:
    times, matrix = machine(800)
    result = run_detect_matrix(OneClassSVM(), times, matrix[:, :1], ["inlet"])
    assert result.contributions.shape == (result.timestamps.shape[0], 1)


@pytest.mark.parametrize("cls", [IsolationForest, OneClassSVM, Autoencoder], ids=lambda c: c.name)
def test_point_scores_are_the_z_the_detections_are_flagged_on(cls: Any) -> None:
    """matrix_point_scores: every row's z before the threshold (for a precision-recall curve);
    the rows above sigmas are exactly the ones detect_matrix_next flags, a missing cell is NaN."""
    times, matrix = machine(2600)
    cells = broken(np.vstack([matrix, machine(200, seed=4)[1]]))[:2600]
    cells[2100, 0] = np.nan
    algorithm = cls(every_point=True, sigmas=3.0)
    fitted = run_fit_matrix(algorithm, times[:2000], cells[:2000], COLUMNS)
    result, _ = run_detect_matrix_next(algorithm, times[2000:], cells[2000:], COLUMNS, fitted.state)
    z = algorithm.matrix_point_scores(cells[2000:], COLUMNS, fitted.typed)
    assert z.shape == (600,) and np.isnan(z[100]) and np.isfinite(z).sum() >= 598
    flagged = times[2000:][z > 3.0]
    assert flagged.tolist() == result.timestamps.tolist() and flagged.size
    np.testing.assert_array_equal(z[z > 3.0], result.scores)
    assert (z <= 3.0).sum() > 400  # most rows are scored, and below the threshold
    with pytest.raises(IncompatibleState, match="same order"):
        algorithm.matrix_point_scores(cells[2000:, ::-1], COLUMNS[::-1], fitted.typed)


def test_a_state_of_version_1_reads_for_one_series_and_is_refused_for_a_matrix() -> None:
    """Version 2 whitens a matrix's rows of values (version 1: values and steps): a matrix state
    of version 1 must be fitted again; one series' state is what it was, and scores the same."""
    times, matrix = machine(1200)
    algorithm = OneClassSVM()
    for fitted, columns in (
        (run_fit_matrix(algorithm, times[:1000], matrix[:1000], COLUMNS), COLUMNS),
        (run_fit(algorithm, times[:1000], matrix[:1000, 0]), []),
    ):
        assert fitted.info.state_version == 2
        decoded = decode_state(fitted.state)
        old = {
            name: value
            for name, value in decoded.fields.items()
            if name not in ("feature_rotation", "component_spread")
        }
        assert bool(old["columns"]) == bool(columns)
        v1 = encode_state(
            "one_class_svm",
            1,
            decoded.info.params,
            _V1State.model_validate(old),
            Seen(*decoded.info.seen),
        )
        if columns:
            with pytest.raises(IncompatibleState, match="fit it again"):
                run_detect_matrix_next(algorithm, times[1000:], matrix[1000:], COLUMNS, v1)
        else:
            now, _ = run_detect_next(algorithm, times[1000:], matrix[1000:, 0], fitted.state)
            then, _ = run_detect_next(algorithm, times[1000:], matrix[1000:, 0], v1)
            assert then.timestamps.tolist() == now.timestamps.tolist()
            assert then.scores.tolist() == now.scores.tolist()


class _V1State(AlgorithmState):
    """one_class_svm's state as version 1 wrote it (no whitening fields)."""

    fitted: bool
    tail: StateArray
    feature_center: StateArray
    feature_spread: StateArray
    score_scale: StateArray
    open_incident: bool
    columns: list[str]
    svm_vectors: StateArray
    svm_weights: StateArray
    svm_offset: StateArray


def test_the_svm_scores_a_matrix_row_higher_the_further_it_leaves_the_support() -> None:
    """-f(x) levels off at the intercept a few kernel widths out; the matrix score, -log of the
    kernel sum, keeps growing (so a gross departure is not scored like a slight one)."""
    rng = np.random.default_rng(0)
    model = fit_svm(rng.standard_normal((500, 3)), 0.05, None)
    far = np.outer(np.arange(2, 40, 2, dtype=np.float64), [1.0, 0.0, 0.0])
    plain, logged = svm_scores(model, far), svm_log_scores(model, far)
    assert np.ptp(plain[-8:]) < 1e-9  # levelled off
    assert (np.diff(logged) > 0).all() and np.isfinite(logged).all()
    inside = rng.standard_normal((200, 3))  # the same order where -f(x) still moves
    order = np.argsort(svm_scores(model, inside))
    assert (np.diff(svm_log_scores(model, inside)[order]) >= -1e-9).all()


def test_the_autoencoder_middle_layer_is_narrower_than_a_matrix_row() -> None:
    """Four units for three columns would copy every row: a 3-column state has two, and the
    training rows themselves are not flagged."""
    times, matrix = machine(2000)
    algorithm = Autoencoder()
    fitted = run_fit_matrix(algorithm, times, matrix, COLUMNS)
    state: Any = fitted.typed
    assert np.asarray(state.mlp_w1).shape == (algorithm.params.hidden, 2)
    z = algorithm.matrix_point_scores(matrix, COLUMNS, fitted.typed)
    assert (z > algorithm.params.sigmas).mean() < 0.002
    single = run_fit(algorithm, times, matrix[:, 0]).typed
    assert np.asarray(single.mlp_w1).shape == (algorithm.params.hidden, 4)  # type: ignore[attr-defined]

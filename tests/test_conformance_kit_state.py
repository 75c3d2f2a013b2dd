"""The kit's state checks can fail, each once and with its fix: a state that keeps the whole
history, one that is not deterministic, one that is not a declared type, a detector that claims
to be causal but is not; and a correct trainable detector passes them all."""

from __future__ import annotations

from typing import Any

import numpy as np

from warden_algos.algorithms.ksigma import KSigma, KSigmaState
from warden_algos.interfaces import DetectorParams, DetectResult
from warden_algos.interfaces.state import AlgorithmState, StateArray
from warden_algos.interfaces.trainable import TrainableDetector
from warden_algos.testing import run_checks

STATE_CHECKS = (
    "check_state_round_trip",
    "check_state_deterministic",
    "check_state_bounded",
    "check_streams_like_batch",
)


def failed(cls: type, **declared: Any) -> dict[str, str]:
    results = run_checks(cls, registered=False, **declared)
    return {r.check: f"{r.detail} | fix: {r.fix}" for r in results if not r.passed}


class HistoryState(AlgorithmState):
    values: StateArray


class Hoarder(TrainableDetector[DetectorParams, HistoryState]):
    """Remembers every point: flags nothing, which is causal, but the state grows."""

    name = "hoarder"
    summary = "Keeps the whole history (a mistake)."

    def detect(self, dimensions: list[str], timestamps: Any, values: Any) -> DetectResult:
        return DetectResult(np.empty(0, np.int64), np.empty(0))

    def fit(self, dimensions: list[str], timestamps: Any, values: Any) -> HistoryState:
        return HistoryState(values=np.array(values))

    def detect_next(
        self, dimensions: list[str], timestamps: Any, values: Any, state: HistoryState
    ) -> tuple[DetectResult, HistoryState]:
        joined = np.concatenate([state.values, values])
        return self.detect(dimensions, timestamps, values), HistoryState(values=joined)


class Dice(Hoarder):
    """Bounded, but its state holds unseeded random numbers."""

    name = "dice"
    summary = "Rolls dice into its state (a mistake)."

    def fit(self, dimensions: list[str], timestamps: Any, values: Any) -> HistoryState:
        return HistoryState(values=np.random.default_rng().random(3))

    def detect_next(
        self, dimensions: list[str], timestamps: Any, values: Any, state: HistoryState
    ) -> tuple[DetectResult, HistoryState]:
        return self.detect(dimensions, timestamps, values), self.fit(dimensions, timestamps, values)


class Forgetful(KSigma):
    """Claims to be causal, but forgets its window between calls: streaming differs."""

    name = "forgetful"
    summary = "Drops its context (a mistake)."

    def detect_next(
        self, dimensions: list[str], timestamps: Any, values: Any, state: KSigmaState
    ) -> tuple[DetectResult, KSigmaState]:
        empty = state.model_copy(update={"times": state.times[:0], "values": state.values[:0]})
        return super().detect_next(dimensions, timestamps, values, empty)


class WrongType(Hoarder):
    name = "wrong_type"
    summary = "Returns something else as its state (a mistake)."

    def fit(self, dimensions: list[str], timestamps: Any, values: Any) -> Any:
        return {"values": values}


def test_a_correct_trainable_detector_passes_every_state_check() -> None:
    results = {r.check: r for r in run_checks(KSigma, registered=False)}
    assert all(name in results and results[name].passed for name in STATE_CHECKS)


def test_a_state_that_keeps_the_history_fails_only_the_bound() -> None:
    failures = failed(Hoarder)
    assert list(failures) == ["check_state_bounded"]
    assert "grows with the history" in failures["check_state_bounded"]
    assert "never the whole history" in failures["check_state_bounded"]


def test_random_state_bytes_fail_determinism() -> None:
    failures = failed(Dice)
    assert list(failures) == ["check_state_deterministic"]
    assert "seed any randomness" in failures["check_state_deterministic"]


def test_a_detector_that_forgets_its_context_does_not_stream_like_batch() -> None:
    failures = failed(Forgetful)
    assert list(failures) == ["check_streams_like_batch"], failures
    assert "causal = False" in failures["check_streams_like_batch"]


def test_a_non_causal_detector_is_not_held_to_batch_equivalence() -> None:
    class Global(Forgetful):
        name = "global_model"
        causal = False

    names = [r.check for r in run_checks(Global, registered=False)]
    assert "check_streams_like_batch" not in names and "check_state_bounded" in names


def test_a_state_of_an_undeclared_type_fails_the_round_trip() -> None:
    failures = failed(WrongType)
    assert "check_state_round_trip" in failures
    assert "ALGORITHM_FAILED" in failures["check_state_round_trip"]


def test_stateless_detectors_get_no_state_checks() -> None:
    from warden_algos.algorithms.spectral_residual import SpectralResidual

    names = [r.check for r in run_checks(SpectralResidual, registered=False)]
    assert not set(names) & set(STATE_CHECKS)

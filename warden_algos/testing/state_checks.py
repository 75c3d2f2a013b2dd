"""The conformance checks of a trainable detector's state: it round-trips through its bytes, is
deterministic, stays bounded as the history grows, and (for a causal detector) streaming gives
the batch call's detections.

They run only for ``TrainableDetector`` subclasses. Each fits on the typical cases' first
points and streams the rest, so an author sees the state contract broken in their own tests,
long before a node refuses a state or a stream drifts from what a batch call would say.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from warden_algos.interfaces import Algorithm, DetectResult, WardenError, run_detect
from warden_algos.interfaces.run_state import load_state, run_detect_next, run_fit
from warden_algos.interfaces.trainable import TrainableDetector

from .capture import stdout_capture
from .cases import DetectCase, detect_cases

if TYPE_CHECKING:
    from .checks import Expectations

#: Points of a typical case the state is fitted on; the rest is streamed.
FIT_POINTS = 300
#: Histories whose states are compared for size: the longer may not be much larger.
SHORT_HISTORY, LONG_HISTORY = 4_000, 16_000


def _failure(check: str, problem: str, fix: str) -> AssertionError:
    from .checks import ConformanceFailure

    return ConformanceFailure(check, problem, fix)


def _typical() -> list[DetectCase]:
    return [case for case in detect_cases() if case.typical]


def _stream(
    algorithm: TrainableDetector[Any, Any], case: DetectCase, chunk: int
) -> tuple[bytes, list[DetectResult], list[bytes]]:
    times, values = case.timestamps, case.values
    fitted = run_fit(algorithm, times[:FIT_POINTS], values[:FIT_POINTS])
    state, results, states = fitted.state, [], []
    for start in range(FIT_POINTS, times.shape[0], chunk):
        result, after = run_detect_next(
            algorithm, times[start : start + chunk], values[start : start + chunk], state
        )
        assert after is not None
        state = after.state
        results.append(result)
        states.append(state)
    return fitted.state, results, states


def _timestamps(results: list[DetectResult]) -> np.ndarray:
    return np.concatenate([r.timestamps for r in results]) if results else np.empty(0, np.int64)


def check_state_round_trip(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    assert isinstance(algorithm, TrainableDetector)
    broken = []
    for case in _typical():
        try:
            with stdout_capture():
                blob, _, states = _stream(algorithm, case, 50)
                for each in (blob, *states):
                    loaded = load_state(algorithm, each)
                    if not isinstance(loaded.typed, algorithm.State):
                        broken.append(f"{case.name!r}: the state comes back as another type")
        except WardenError as error:
            broken.append(f"{case.name!r}: {error.code.value}: {error.message}")
    if broken:
        raise _failure(
            "check_state_round_trip",
            "the fitted or streamed state does not come back from its bytes: " + "; ".join(broken),
            "declare every field of State with a plain type (int, float, str, bool, lists and "
            "dicts of them) or StateArray (numpy float64/int64/bool arrays), and return a new "
            "State from fit and detect_next",
        )


def check_state_deterministic(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    assert isinstance(algorithm, TrainableDetector)
    differ = []
    for case in _typical():
        try:
            with stdout_capture():
                first = _stream(algorithm, case, 50)
                second = _stream(algorithm, case, 50)
        except WardenError:
            return  # a state that cannot be written or read: check_state_round_trip's failure
        if first[0] != second[0]:
            differ.append(f"{case.name!r}: fit")
        elif first[2] != second[2]:
            differ.append(f"{case.name!r}: detect_next")
    if differ:
        raise _failure(
            "check_state_deterministic",
            "the same history gives different state bytes: " + ", ".join(differ),
            "seed any randomness from the params (e.g. a seed param), and build arrays in a "
            "fixed order (no sets, no dict order that depends on hashing)",
        )


def _long_history(n: int) -> tuple[np.ndarray, np.ndarray]:
    base = _typical()[0]
    reps = -(-n // base.values.shape[0])
    values = np.tile(base.values, reps)[:n]
    times = base.timestamps[0] + 60 * np.arange(n, dtype=np.int64)
    return times, values


def check_state_bounded(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    assert isinstance(algorithm, TrainableDetector)
    try:
        with stdout_capture():
            short = len(run_fit(algorithm, *_long_history(SHORT_HISTORY)).state)
            long = len(run_fit(algorithm, *_long_history(LONG_HISTORY)).state)
    except WardenError:
        return  # check_state_round_trip's failure
    if long > 1.5 * short + 4096:
        raise _failure(
            "check_state_bounded",
            f"the state grows with the history: {short:,} bytes after {SHORT_HISTORY:,} points, "
            f"{long:,} after {LONG_HISTORY:,}",
            "keep only what scoring new points needs (a window, a profile per phase, running "
            "sums), never the whole history",
        )


def check_streams_like_batch(algorithm: Algorithm[Any], expectations: Expectations) -> None:
    assert isinstance(algorithm, TrainableDetector)
    differ = []
    for case in _typical():
        try:
            with stdout_capture():
                batch = run_detect(algorithm, case.timestamps, case.values)
                tail = batch.timestamps[batch.timestamps >= case.timestamps[FIT_POINTS]]
                streamed = [_stream(algorithm, case, chunk)[1] for chunk in (1, 50)]
        except WardenError:
            return  # refusals and broken states are other checks' failures
        for chunk, results in zip((1, 50), streamed, strict=True):
            if not np.array_equal(_timestamps(results), tail):
                differ.append(f"{case.name!r} in chunks of {chunk}")
    if differ:
        raise _failure(
            "check_streams_like_batch",
            "fitting on the first points and streaming the rest finds other detections than one "
            "detect call over the whole series: " + ", ".join(differ),
            "keep in the state everything the next points' scores depend on (the trailing "
            "window, open incidents), frozen at fit; or, if the detector is not causal (a point's "
            "score depends on later points), set causal = False on the class",
        )

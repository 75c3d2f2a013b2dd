"""Run a trainable algorithm as the platform does: fit to state bytes, detect with state bytes.

The twin of ``run.py`` for trainable detectors (``trainable.py``): the same input checks and
budget, plus the state's own (``state.py``: its bytes decoded and checked, matched to the
algorithm and its params, new points after the ones it has seen). Imported only when a request
involves a state, so stateless one-shot runs never pay for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy.typing as npt

from .alerting_params import alerting_of
from .budget import InputShape, check_budget
from .errors import AlgorithmFailed, InvalidInput
from .explaining import explaining, finish_detect
from .run import _readonly, as_times, as_values
from .state import (
    AlgorithmState,
    Seen,
    StateInfo,
    canonical_params,
    decode_state,
    encode_described,
    matched_state,
)
from .trainable import TrainableDetector
from .types import DetectResult, I64Array
from .validation import check_detect_input, check_detect_result

if TYPE_CHECKING:
    from .alerting import AlertingState


class Fitted(NamedTuple):
    """A state as the wire carries it (its bytes, their sha256) and as the algorithm uses it
    (typed), with what it says about itself: a serve process caches these whole, so a request
    naming a state by sha256 skips decoding it."""

    state: bytes
    info: StateInfo
    sha256: str
    typed: AlgorithmState
    #: The alerting stage's state when the stream uses the stage.
    alerting: AlertingState | None = None


def _trainable(algorithm: Any) -> TrainableDetector[Any, Any]:
    if not isinstance(algorithm, TrainableDetector):
        from .errors import UnknownAlgorithm

        raise UnknownAlgorithm(
            f"{algorithm.name} is not trainable: it has no fit and takes no state (describe "
            "says which algorithms are trainable)"
        )
    return algorithm


def _packed(
    algorithm: TrainableDetector[Any, Any],
    state: Any,
    seen: Seen,
    canonical: dict[str, Any] | None = None,
    alerting: AlertingState | None = None,
) -> Fitted:
    """``state`` as bytes; ``canonical``: the algorithm's params as ``canonical_params`` gives
    them, when the caller already has them (a streamed call needs them twice); ``alerting``:
    the alerting stage's state, kept beside it."""
    if not isinstance(state, algorithm.State):
        raise AlgorithmFailed(
            f"{algorithm.name} returned a {type(state).__name__} as its state, not its declared "
            f"{algorithm.State.__name__}"
        )
    name, version = algorithm.name, algorithm.state_version
    if canonical is None:
        canonical = canonical_params(algorithm.get_params())
    blob, info = encode_described(
        name, version, canonical, state, seen, canonical=True, alerting=alerting
    )
    return Fitted(blob, info, hashlib.sha256(blob).hexdigest(), state, alerting)


def run_fit(
    algorithm: Any,
    timestamps: npt.ArrayLike,
    values: npt.ArrayLike,
    dimensions: Sequence[str] = (),
    *,
    path: str = "fit",
) -> Fitted:
    """Fit ``algorithm`` on a history, checked as a detect payload is; the state as bytes."""
    trainable = _trainable(algorithm)
    ts = _readonly(as_times(f"{path}.timestamps", timestamps))
    vs = _readonly(as_values(f"{path}.values", values))
    check_detect_input(path, ts, vs)
    n = ts.shape[0]
    check_budget(trainable.name, trainable.estimate(InputShape(n, 1, n)))
    state = trainable.fit(list(dimensions), ts, vs)
    return _packed(trainable, state, Seen(None, None, 0).then(ts))


def load_state(algorithm: Any, blob: bytes) -> Fitted:
    """``blob`` as ``algorithm``'s typed state, if it is one of its own (same params, a version
    it reads); else ``INVALID_INPUT`` (not a state, damaged) or ``INCOMPATIBLE_STATE``."""
    trainable = _trainable(algorithm)
    decoded = decode_state(blob)
    state = matched_state(
        decoded,
        trainable.State,
        trainable.name,
        trainable.state_version,
        trainable.get_params(),
        migrate=trainable.migrate_state,
    )
    staged = None
    if decoded.alerting is not None:
        from .alerting import load_alerting_state

        staged = load_alerting_state(decoded.alerting)
    return Fitted(blob, decoded.info, decoded.blob_sha256, state, staged)


def _usable(
    trainable: TrainableDetector[Any, Any], state: bytes | Fitted, canonical: dict[str, Any]
) -> Fitted:
    """A state ready for this algorithm: bytes are decoded and checked; an already decoded one
    (from a cache) only has to belong to this algorithm and params (it was checked when it
    entered)."""
    if isinstance(state, bytes):
        return load_state(trainable, state)
    info = state.info
    if (
        info.algorithm == trainable.name
        and info.state_version == trainable.state_version
        and type(state.typed) is trainable.State
        and info.params == canonical
    ):
        return state
    return load_state(trainable, state.state)  # says precisely why it does not fit


def check_after_state(seen_end: int | None, timestamps: I64Array, path: str) -> None:
    """A state scores only the points after the ones it has seen."""
    if timestamps.shape[0] and seen_end is not None and int(timestamps[0]) <= seen_end:
        raise InvalidInput(
            f"the state has seen points up to {seen_end}; only later points can be scored "
            f"with it, but the first given is {int(timestamps[0])}",
            field=f"{path}.timestamps[0]",
        )


def run_detect_next(
    algorithm: Any,
    timestamps: npt.ArrayLike,
    values: npt.ArrayLike,
    state: bytes | Fitted,
    dimensions: Sequence[str] = (),
    *,
    path: str = "detect",
    return_state: bool = True,
    explain: bool = False,
) -> tuple[DetectResult, Fitted | None]:
    """Score points that follow ``state`` (bytes a fit or an earlier call returned, or such a
    state already decoded) and, with ``return_state``, the state after them; ``explain`` as in
    ``run_detect``."""
    trainable = _trainable(algorithm)
    canonical = canonical_params(trainable.get_params())
    loaded = _usable(trainable, state, canonical)
    info = loaded.info
    ts = _readonly(as_times(f"{path}.timestamps", timestamps))
    vs = _readonly(as_values(f"{path}.values", values))
    check_detect_input(path, ts, vs)
    check_after_state(info.seen_end, ts, path)
    n = ts.shape[0]
    alerting = alerting_of(trainable)
    if alerting is not None:
        return _detect_next_alerting(
            trainable, list(dimensions), ts, vs, loaded, canonical, return_state, explain
        )
    check_budget(trainable.name, trainable.estimate(InputShape(n, 1, n)))
    with explaining(explain):
        result, after = trainable.detect_next(list(dimensions), ts, vs, loaded.typed)
    checked = finish_detect(check_detect_result(result, ts), ts, vs, explain)
    if not return_state:
        return checked, None
    # Points scored without the stage leave its history behind: the next call with it restarts.
    return checked, _packed(trainable, after, info.seen.then(ts), canonical)


def _detect_next_alerting(
    trainable: TrainableDetector[Any, Any],
    dimensions: list[str],
    timestamps: I64Array,
    values: npt.NDArray[Any],
    loaded: Fitted,
    canonical: dict[str, Any],
    return_state: bool,
    explain: bool,
) -> tuple[DetectResult, Fitted | None]:
    """``run_detect_next`` with the alerting stage after the detector, resumed from the state's
    alerting part (a state without one starts the stage afresh) and stored back beside it."""
    from .alerting import apply_alerting, with_stage
    from .point_capture import capturing

    alerting = alerting_of(trainable)
    assert alerting is not None
    n = timestamps.shape[0]
    check_budget(trainable.name, with_stage(trainable.estimate(InputShape(n, 1, n)), n, alerting))
    with explaining(False), capturing() as captured:
        result, after = trainable.detect_next(dimensions, timestamps, values, loaded.typed)
    checked = check_detect_result(result, timestamps)
    alerted, staged = apply_alerting(
        trainable.name, checked, timestamps, values, captured, alerting, explain, loaded.alerting
    )
    answer = finish_detect(alerted, timestamps, values, explain)
    if not return_state:
        return answer, None
    seen = loaded.info.seen.then(timestamps)
    return answer, _packed(trainable, after, seen, canonical, staged)

"""Trainable detectors: fit once on history, then score only new points with the fitted state.

A detector that can learn subclasses :class:`TrainableDetector` instead of ``DetectAlgorithm`` and
declares its ``State`` (an :class:`~warden_algos.interfaces.state.AlgorithmState`, like
``Params``) and a ``state_version``. It implements two methods:

- ``fit(dimensions, timestamps, values) -> State``: learn from history;
- ``detect_next(dimensions, timestamps, values, state) -> (DetectResult, State)``: score points
  that follow the state's last one and return the state after them, so a caller can stream (each
  call carries only the new points) or score new batches against a stored model.

``detect`` (the stateless call, with the whole history) keeps working; for a causal detector it is
"fit on nothing, then detect_next over everything", and the conformance kit checks that streaming
in chunks gives the same detections. The SDK serialises states (``state.py``: safe, versioned,
self-describing bytes), checks that a state belongs to this algorithm and these params, and that
new points come after the ones the state has seen; the algorithm only ever sees typed states.

A state must stay bounded: its size may grow with what the model must remember (a window, a
profile per phase), never with the length of the history (the kit checks it).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Generic, TypeVar, get_args, get_origin

from pydantic import BaseModel

from .base import DetectAlgorithm, P
from .errors import IncompatibleState
from .state import AlgorithmState
from .types import DetectResult, F64Array, I64Array

S = TypeVar("S", bound=AlgorithmState)


def _state_from_generic(cls: type) -> type[AlgorithmState] | None:
    for base in getattr(cls, "__orig_bases__", ()):
        origin = get_origin(base)
        if isinstance(origin, type) and issubclass(origin, TrainableDetector):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, AlgorithmState):
                    return arg
    return None


class TrainableDetector(DetectAlgorithm[P], Generic[P, S]):
    """A detector with a fitted state: ``fit`` learns, ``detect_next`` scores what follows."""

    #: The state model. Inferred from ``TrainableDetector[MyParams, MyState]`` when not set.
    State: ClassVar[type[AlgorithmState]] = AlgorithmState
    #: Bump when the state's fields or their meaning change; older states are then migrated by
    #: :meth:`migrate_state` or refused (``INCOMPATIBLE_STATE``).
    state_version: ClassVar[int] = 1
    #: A point's score depends only on it and earlier points, so fitting on a prefix and
    #: streaming the rest gives one batch call's detections (the conformance kit checks it).
    #: False for a detector that fits globally (prophet): streaming then scores new points
    #: against the fitted model instead.
    causal: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "State" not in cls.__dict__:
            inferred = _state_from_generic(cls)
            if inferred is not None:
                cls.State = inferred

    @abstractmethod
    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> S:
        """Learn from history (times strictly increasing, NaN = missing; may be empty)."""
        raise NotImplementedError

    @abstractmethod
    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: S
    ) -> tuple[DetectResult, S]:
        """Score points that all come after the ones ``state`` has seen; return the result for
        these points only and the state after them. Never modify ``state``: return a new one."""
        raise NotImplementedError

    @classmethod
    def migrate_state(cls, from_version: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Upgrade the fields of a state of an older ``state_version``. The default refuses:
        such states must be fitted again."""
        raise IncompatibleState(
            f"{cls.name} cannot read version {from_version} of its state (it reads "
            f"{cls.state_version}): fit again",
            field="state",
        )

    @classmethod
    def state_schema(cls) -> dict[str, Any]:
        """The state's fields for ``describe``: name, kind (array or value) and description."""
        fields = {}
        for name, info in cls.State.model_fields.items():
            kind = "array" if name in cls.State._array_fields else _kind(info.annotation)
            fields[name] = {"kind": kind, "description": info.description or ""}
        return {"state_version": cls.state_version, "fields": fields}


def _kind(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def is_trainable(cls: type) -> bool:
    return isinstance(cls, type) and issubclass(cls, TrainableDetector)

"""What an algorithm author sees: the base classes, the data types, the errors, and the runners.

    from warden_algos.interfaces import DetectAlgorithm, DetectResult, AlgorithmParams

Only what an author writes, raises, catches or tests with is exported here (a test keeps it so);
the SDK's own names (the contract check, the other error codes' classes, ...) are imported from
the submodules that define them: ``base``, ``errors``, ``types``, ``run``, ``validation``,
``state``, ``trainable``, ``run_state``.
Nothing here imports pandas; ``warden_algos.interfaces.pandas_api`` is the notebook convenience.
"""

from .base import (
    Algorithm,
    AlgorithmParams,
    DetectAlgorithm,
    DetectorParams,
    NoParams,
    RCAAlgorithm,
)
from .errors import ErrorCode, InvalidInput, InvalidParams, WardenError
from .explaining import explanations_wanted
from .graph import DependencyGraph, rca_graph
from .run import run_detect, run_rca
from .run_state import run_detect_next, run_fit
from .state import AlgorithmState, StateArray
from .trainable import TrainableDetector
from .types import DetectResult, Explanation, F64Array, I64Array, RCAResult, TimeSeries

__all__ = [
    "Algorithm",
    "AlgorithmParams",
    "AlgorithmState",
    "DependencyGraph",
    "DetectAlgorithm",
    "DetectResult",
    "DetectorParams",
    "ErrorCode",
    "Explanation",
    "F64Array",
    "I64Array",
    "InvalidInput",
    "InvalidParams",
    "NoParams",
    "RCAAlgorithm",
    "RCAResult",
    "StateArray",
    "TimeSeries",
    "TrainableDetector",
    "WardenError",
    "explanations_wanted",
    "rca_graph",
    "run_detect",
    "run_detect_next",
    "run_fit",
    "run_rca",
]

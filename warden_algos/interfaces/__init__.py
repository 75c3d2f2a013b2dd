"""What an algorithm author sees: the base classes, the data types, the errors, and the runners.

    from warden_algos.interfaces import DetectAlgorithm, DetectResult, AlgorithmParams

Only what an author writes, raises, catches or tests with is exported here (a test keeps it so);
the SDK's own names (the contract check, the other error codes' classes, ...) are imported from
the submodules that define them: ``base``, ``errors``, ``types``, ``run``, ``validation``.
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
from .run import run_detect, run_rca
from .types import DetectResult, F64Array, I64Array, RCAResult, TimeSeries

__all__ = [
    "Algorithm",
    "AlgorithmParams",
    "DetectAlgorithm",
    "DetectResult",
    "DetectorParams",
    "ErrorCode",
    "F64Array",
    "I64Array",
    "InvalidInput",
    "InvalidParams",
    "NoParams",
    "RCAAlgorithm",
    "RCAResult",
    "TimeSeries",
    "WardenError",
    "run_detect",
    "run_rca",
]

"""What an algorithm author sees: the base classes, the data types, the errors, and the runners.

    from warden_algos.interfaces import DetectAlgorithm, DetectResult, AlgorithmParams

Nothing here imports pandas; ``warden_algos.interfaces.pandas_api`` is the notebook convenience.
"""

from .base import (
    Algorithm,
    AlgorithmParams,
    DetectAlgorithm,
    DetectorParams,
    Interface,
    NoParams,
    RCAAlgorithm,
    contract_problems,
)
from .errors import (
    AlgorithmFailed,
    ErrorCode,
    InternalError,
    InvalidInput,
    InvalidParams,
    RequestTimeout,
    UnknownAlgorithm,
    WardenError,
)
from .run import run_detect, run_rca
from .types import DetectResult, F64Array, I64Array, RCAResult, TimeSeries, render_dimensions

__all__ = [
    "Algorithm",
    "AlgorithmFailed",
    "AlgorithmParams",
    "DetectAlgorithm",
    "DetectResult",
    "DetectorParams",
    "ErrorCode",
    "F64Array",
    "I64Array",
    "Interface",
    "InternalError",
    "InvalidInput",
    "InvalidParams",
    "NoParams",
    "RCAAlgorithm",
    "RCAResult",
    "RequestTimeout",
    "TimeSeries",
    "UnknownAlgorithm",
    "WardenError",
    "contract_problems",
    "render_dimensions",
    "run_detect",
    "run_rca",
]

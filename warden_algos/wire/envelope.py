"""The format-independent request and response, as every codec produces and consumes them.

Codecs (JSON today, Thrift next) translate bytes to and from these objects and nothing else; the
dispatcher only ever sees these. Arrays are numpy arrays already, so no later stage converts again.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from warden_algos.interfaces import (
    DetectResult,
    ErrorCode,
    F64Array,
    I64Array,
    RCAResult,
    TimeSeries,
    WardenError,
)
from warden_algos.interfaces.multivariate import MultivariateResult

#: What a request asks for: an algorithm interface, or fitting a trainable detector.
RequestInterface = Literal["detect", "rca", "fit"]


class DetectPayload(NamedTuple):
    dimensions: list[str]
    timestamps: I64Array
    values: F64Array
    #: A trained state to score the points with (they follow the ones it has seen); at most one of
    #: state, state_sha256 (a state this serve process holds) and model (a stored model's key).
    state: bytes | None = None
    state_sha256: str | None = None
    model: str | None = None
    #: Answer the state after these points too.
    return_state: bool = False
    #: With return_state, in a process that keeps states: answer only the new state's sha256.
    return_state_sha256_only: bool = False
    #: Multivariate, instead of values (then empty): the columns' names and the rows x columns
    #: matrix (NaN = missing).
    columns: list[str] | None = None
    matrix: F64Array | None = None

    @property
    def with_state(self) -> bool:
        return self.state is not None or self.state_sha256 is not None or self.model is not None


class FitPayload(NamedTuple):
    dimensions: list[str]
    timestamps: I64Array
    values: F64Array
    #: Multivariate, instead of values (then empty), as in DetectPayload.
    columns: list[str] | None = None
    matrix: F64Array | None = None


class RCAPayload(NamedTuple):
    metric_of_interest: TimeSeries
    related_metrics: list[TimeSeries]
    k: int
    anomalies: I64Array
    #: The dependency graph's edges (parent, child) between the metrics' keys, when the request
    #: carries one (``interfaces.graph``; checked by ``run_rca``).
    graph: list[tuple[str, str]] | None = None


Payload = DetectPayload | RCAPayload | FitPayload


class FitResult(NamedTuple):
    """A fitted state as the wire carries it, and what it says about itself."""

    state: bytes
    state_sha256: str
    state_version: int
    points: int
    seen_start: int | None
    seen_end: int | None


class Request(NamedTuple):
    interface: RequestInterface
    algorithm: str
    payload: Payload
    params: dict[str, Any]
    request_id: str | None = None
    #: The host does not want the per-point band back (saves most of a large response).
    include_band: bool = True
    #: The host sent, and wants back, arrays as packed little-endian bytes rather than number lists.
    packed_arrays: bool = False
    #: The host wants each detection's explanation (off by default: the hot path stays fast).
    include_explanations: bool = False


class ErrorInfo(NamedTuple):
    code: ErrorCode
    message: str
    field: str | None = None

    @classmethod
    def from_exception(cls, error: WardenError) -> ErrorInfo:
        return cls(code=error.code, message=error.message, field=error.field)


class Response(NamedTuple):
    request_id: str | None
    result: DetectResult | MultivariateResult | RCAResult | FitResult | None = None
    error: ErrorInfo | None = None
    packed_arrays: bool = False
    #: A detect answer's state after its points (when the request asked for it), and its sha256.
    state: bytes | None = None
    state_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

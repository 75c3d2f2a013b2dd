"""The format-independent request and response, as every codec produces and consumes them.

Codecs (JSON today, Thrift next) translate bytes to and from these objects and nothing else; the
dispatcher only ever sees these. Arrays are numpy arrays already, so no later stage converts again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warden_algos.interfaces import (
    DetectResult,
    ErrorCode,
    F64Array,
    I64Array,
    Interface,
    RCAResult,
    TimeSeries,
    WardenError,
)


@dataclass(frozen=True, slots=True)
class DetectPayload:
    dimensions: list[str]
    timestamps: I64Array
    values: F64Array


@dataclass(frozen=True, slots=True)
class RCAPayload:
    metric_of_interest: TimeSeries
    related_metrics: list[TimeSeries]
    k: int
    anomalies: I64Array


Payload = DetectPayload | RCAPayload


@dataclass(frozen=True, slots=True)
class Request:
    interface: Interface
    algorithm: str
    payload: Payload
    params: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    #: The host does not want the per-point band back (saves most of a large response).
    include_band: bool = True
    #: The host sent, and wants back, arrays as packed little-endian bytes rather than number lists.
    packed_arrays: bool = False


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: ErrorCode
    message: str
    field: str | None = None

    @classmethod
    def from_exception(cls, error: WardenError) -> ErrorInfo:
        return cls(code=error.code, message=error.message, field=error.field)


@dataclass(frozen=True, slots=True)
class Response:
    request_id: str | None
    result: DetectResult | RCAResult | None = None
    error: ErrorInfo | None = None
    packed_arrays: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

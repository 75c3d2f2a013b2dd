"""The format-independent request and response, as every codec produces and consumes them.

Codecs (JSON today, Thrift next) translate bytes to and from these objects and nothing else; the
dispatcher only ever sees these. Arrays are numpy arrays already, so no later stage converts again.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from warden_algos.interfaces import (
    DetectResult,
    ErrorCode,
    F64Array,
    I64Array,
    RCAResult,
    TimeSeries,
    WardenError,
)
from warden_algos.interfaces.base import Interface


class DetectPayload(NamedTuple):
    dimensions: list[str]
    timestamps: I64Array
    values: F64Array


class RCAPayload(NamedTuple):
    metric_of_interest: TimeSeries
    related_metrics: list[TimeSeries]
    k: int
    anomalies: I64Array


Payload = DetectPayload | RCAPayload


class Request(NamedTuple):
    interface: Interface
    algorithm: str
    payload: Payload
    params: dict[str, Any]
    request_id: str | None = None
    #: The host does not want the per-point band back (saves most of a large response).
    include_band: bool = True
    #: The host sent, and wants back, arrays as packed little-endian bytes rather than number lists.
    packed_arrays: bool = False


class ErrorInfo(NamedTuple):
    code: ErrorCode
    message: str
    field: str | None = None

    @classmethod
    def from_exception(cls, error: WardenError) -> ErrorInfo:
        return cls(code=error.code, message=error.message, field=error.field)


class Response(NamedTuple):
    request_id: str | None
    result: DetectResult | RCAResult | None = None
    error: ErrorInfo | None = None
    packed_arrays: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

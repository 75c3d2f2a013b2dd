"""One request, bytes in, bytes out: decode -> resolve -> execute -> encode.

Each arrow is one function below. The dispatcher names no format (the codec does) and no algorithm
(the registry does). Every failure, wherever it is raised, becomes a response in exactly one place,
``error_response``. Nothing about one request is kept for the next: the algorithm instance is built
per request and dropped with it.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from warden_algos.interfaces import (
    Algorithm,
    DetectAlgorithm,
    DetectResult,
    ErrorCode,
    RCAAlgorithm,
    RCAResult,
    WardenError,
    run_detect,
    run_rca,
)
from warden_algos.interfaces.errors import AlgorithmFailed, InternalError
from warden_algos.logs import current_request_id
from warden_algos.registry import Registry
from warden_algos.wire import (
    Codec,
    DetectPayload,
    ErrorInfo,
    RCAPayload,
    Request,
    Response,
)

from .deadline import SoftDeadline

log = logging.getLogger("warden_algos.dispatcher")


class Outcome(NamedTuple):
    """What the caller (the run/serve loop) needs to know about a handled request."""

    request_id: str | None
    status: str
    code: ErrorCode | None
    algorithm: str | None
    elapsed_ms: float


def decode(codec: Codec, raw: bytes | bytearray) -> Request:
    return codec.decode_request(raw)


def resolve(registry: Registry, request: Request) -> Algorithm[Any]:
    algorithm_class = registry.load_for(request.interface, request.algorithm)
    return algorithm_class(algorithm_class.validate_params(request.params))


def execute(algorithm: Algorithm[Any], request: Request) -> DetectResult | RCAResult:
    payload = request.payload
    try:
        if isinstance(algorithm, DetectAlgorithm) and isinstance(payload, DetectPayload):
            result = run_detect(algorithm, payload.timestamps, payload.values, payload.dimensions)
            return result if request.include_band else result.without_band()
        if isinstance(algorithm, RCAAlgorithm) and isinstance(payload, RCAPayload):
            return run_rca(
                algorithm,
                payload.metric_of_interest,
                payload.related_metrics,
                payload.k,
                payload.anomalies,
            )
    except WardenError:
        raise
    except (Exception, SystemExit) as error:  # an algorithm's failure is a response, not an exit
        log.error("algorithm %s raised %s", request.algorithm, type(error).__name__, exc_info=error)
        raise AlgorithmFailed(
            f"{request.algorithm} raised {type(error).__name__}: {error}"
        ) from error
    raise InternalError(f"payload {type(payload).__name__} does not fit {type(algorithm).__name__}")


def error_response(request_id: str | None, error: BaseException) -> Response:
    """The one place where an exception becomes a response."""
    if not isinstance(error, WardenError):
        log.error("internal error", exc_info=error)
        error = InternalError(f"internal error: {type(error).__name__}: {error}")
    return Response(request_id=request_id, error=ErrorInfo.from_exception(error))


class Dispatcher:
    """Holds what lives across requests (codec, registry, limits) and nothing per request."""

    def __init__(
        self, codec: Codec, *, timeout_s: float | None = None, registry: Registry | None = None
    ) -> None:
        """``registry`` defaults to the installed algorithms, discovered on the first request;
        the conformance kit passes one holding just the class under test."""
        self.codec = codec
        self.deadline = SoftDeadline(timeout_s)
        self._registry: Registry | None = registry
        self._registry_error: WardenError | None = None
        #: The id of the request being handled, for the watchdog thread's TIMEOUT answer.
        self.in_flight_request_id: str | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            if self._registry_error is not None:
                raise self._registry_error
            try:
                self._registry = Registry.discover()
            except WardenError as error:
                self._registry_error = error
                raise
        return self._registry

    def handle(self, raw: bytes | bytearray) -> tuple[bytes, Outcome]:
        started = time.perf_counter()
        request: Request | None = None
        request_id: str | None = None
        token = current_request_id.set(None)
        self.in_flight_request_id = None
        try:
            with self.deadline:
                request = decode(self.codec, raw)
                request_id = request.request_id
                current_request_id.set(request_id)
                self.in_flight_request_id = request_id
                algorithm = resolve(self.registry, request)
                result = execute(algorithm, request)
                del algorithm
            response = Response(
                request_id=request_id, result=result, packed_arrays=request.packed_arrays
            )
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            if request_id is None and isinstance(error, WardenError):
                request_id = error.request_id
            response = error_response(request_id, error)
        try:
            body = self.codec.encode_response(response)
        except Exception as error:
            response = error_response(request_id, error)
            body = self.codec.encode_response(response)
        outcome = Outcome(
            request_id=request_id,
            status="ok" if response.ok else "error",
            code=None if response.error is None else response.error.code,
            algorithm=None if request is None else request.algorithm,
            elapsed_ms=(time.perf_counter() - started) * 1e3,
        )
        current_request_id.reset(token)
        return body, outcome

    def error_body(self, error: WardenError, request_id: str | None = None) -> bytes:
        """Bytes of an error response for failures found outside ``handle`` (framing, limits)."""
        return self.codec.encode_response(error_response(request_id, error))

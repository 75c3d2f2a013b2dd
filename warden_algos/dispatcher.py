"""One request, bytes in, bytes out: decode -> resolve -> execute -> encode.

Each arrow is one function below. The dispatcher names no format (the codec does) and no algorithm
(the registry does). Every failure, wherever it is raised, becomes a response in exactly one place,
``error_response``. Nothing about one request is kept for the next: the algorithm instance is built
per request and dropped with it. The one exception is opt-in and answer-neutral: a serve process's
cache of recent states (``state_cache.py``), which only saves a caller from resending a state.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

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
from warden_algos.interfaces.errors import AlgorithmFailed, InternalError, UnknownAlgorithm
from warden_algos.interfaces.multivariate import MultivariateResult
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
from warden_algos.wire.envelope import FitPayload, FitResult

from .deadline import SoftDeadline

if TYPE_CHECKING:
    from warden_algos.interfaces.run_state import Fitted

    from .models_folder import ModelsFolder
    from .state_cache import StateCache

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


class Executed(NamedTuple):
    result: DetectResult | MultivariateResult | RCAResult | FitResult
    state: bytes | None = None  # a detect answer's state after its points, when asked for
    state_sha256: str | None = None


class States:
    """Where a detect request's state comes from besides the request: this process's cache of
    recent states and the node's models folder (both optional)."""

    def __init__(self, cache: StateCache | None = None, models: ModelsFolder | None = None) -> None:
        self.cache = cache
        self.models = models

    def of(self, algorithm: Algorithm[Any], payload: DetectPayload) -> bytes | Fitted:
        from warden_algos.interfaces.errors import StateNotFound

        if payload.state is not None:
            return payload.state
        if payload.state_sha256 is not None:
            if self.cache is None:
                from .state_cache import not_held

                raise not_held(payload.state_sha256)
            return self.cache.get(payload.state_sha256)
        assert payload.model is not None
        if self.models is None:
            raise StateNotFound(
                "this process has no models folder (--models-dir): send the state itself",
                field="detect.model",
            )
        return self.models.load(algorithm.name, algorithm.get_params(), payload.model)

    def __contains__(self, sha256: str) -> bool:
        return self.cache is not None and sha256 in self.cache

    def keep(self, fitted: Fitted) -> None:
        if self.cache is not None:
            self.cache.put(fitted)


def resolve(registry: Registry, request: Request) -> Algorithm[Any]:
    interface = "detect" if request.interface == "fit" else request.interface
    algorithm_class = registry.load_for(interface, request.algorithm)
    return algorithm_class(algorithm_class.validate_params(request.params))


def execute(algorithm: Algorithm[Any], request: Request, states: States | None = None) -> Executed:
    payload = request.payload
    try:
        if isinstance(payload, FitPayload) or (
            isinstance(payload, DetectPayload) and payload.with_state
        ):
            return _execute_with_state(algorithm, request, states or States())
        if isinstance(payload, DetectPayload) and payload.matrix is not None:
            from warden_algos.interfaces.run_matrix import run_detect_matrix

            found = run_detect_matrix(
                algorithm, payload.timestamps, payload.matrix, payload.columns or [],
                payload.dimensions, explain=request.include_explanations,
            )  # fmt: skip
            return Executed(found if request.include_band else found._replace(expected=None))
        if isinstance(algorithm, DetectAlgorithm) and isinstance(payload, DetectPayload):
            result = run_detect(
                algorithm,
                payload.timestamps,
                payload.values,
                payload.dimensions,
                explain=request.include_explanations,
            )
            return Executed(result if request.include_band else result.without_band())
        if isinstance(algorithm, RCAAlgorithm) and isinstance(payload, RCAPayload):
            return Executed(
                run_rca(
                    algorithm,
                    payload.metric_of_interest,
                    payload.related_metrics,
                    payload.k,
                    payload.anomalies,
                    graph=payload.graph,
                )
            )
    except WardenError:
        raise
    except (Exception, SystemExit) as error:  # an algorithm's failure is a response, not an exit
        log.error("algorithm %s raised %s", request.algorithm, type(error).__name__, exc_info=error)
        raise AlgorithmFailed(
            f"{request.algorithm} raised {type(error).__name__}: {error}"
        ) from error
    raise InternalError(f"payload {type(payload).__name__} does not fit {type(algorithm).__name__}")


def _execute_with_state(algorithm: Algorithm[Any], request: Request, states: States) -> Executed:
    """fit, or detect with a state: the trainable half of the pipeline (imported only here)."""
    from warden_algos.interfaces.run_state import load_state, run_detect_next, run_fit
    from warden_algos.interfaces.trainable import TrainableDetector

    if not isinstance(algorithm, TrainableDetector):
        raise UnknownAlgorithm(
            f"{request.algorithm} is not trainable: it has no fit and takes no state "
            "(`warden-algos list` marks the trainable algorithms)",
            field="algorithm",
        )
    payload = request.payload
    if isinstance(payload, FitPayload):
        if payload.matrix is not None:
            from warden_algos.interfaces.run_matrix import run_fit_matrix

            fitted = run_fit_matrix(
                algorithm, payload.timestamps, payload.matrix, payload.columns or [],
                payload.dimensions,
            )  # fmt: skip
        else:
            fitted = run_fit(algorithm, payload.timestamps, payload.values, payload.dimensions)
        states.keep(fitted)
        seen = fitted.info.seen
        return Executed(
            FitResult(
                state=fitted.state,
                state_sha256=fitted.sha256,
                state_version=fitted.info.state_version,
                points=seen.points,
                seen_start=seen.start,
                seen_end=seen.end,
            )
        )
    assert isinstance(payload, DetectPayload)
    given = states.of(algorithm, payload)
    if isinstance(given, bytes) and states.cache is not None:
        given = load_state(algorithm, given)  # decoded once here, then kept decoded
        states.keep(given)
    result: DetectResult | MultivariateResult
    if payload.matrix is not None:
        from warden_algos.interfaces.run_matrix import run_detect_matrix_next

        found, after = run_detect_matrix_next(
            algorithm,
            payload.timestamps,
            payload.matrix,
            payload.columns or [],
            given,
            payload.dimensions,
            return_state=payload.return_state,
            explain=request.include_explanations,
        )
        result = found if request.include_band else found._replace(expected=None)
    else:
        single, after = run_detect_next(
            algorithm,
            payload.timestamps,
            payload.values,
            given,
            payload.dimensions,
            return_state=payload.return_state,
            explain=request.include_explanations,
        )
        result = single if request.include_band else single.without_band()
    if after is None:
        return Executed(result)
    states.keep(after)
    if payload.return_state_sha256_only and after.sha256 in states:
        return Executed(result, None, after.sha256)  # kept here: the caller names it next time
    return Executed(result, after.state, after.sha256)


def error_response(request_id: str | None, error: BaseException) -> Response:
    """The one place where an exception becomes a response."""
    if not isinstance(error, WardenError):
        log.error("internal error", exc_info=error)
        error = InternalError(f"internal error: {type(error).__name__}: {error}")
    return Response(request_id=request_id, error=ErrorInfo.from_exception(error))


class Dispatcher:
    """Holds what lives across requests (codec, registry, limits) and nothing per request."""

    def __init__(
        self,
        codec: Codec,
        *,
        timeout_s: float | None = None,
        registry: Registry | None = None,
        state_cache: StateCache | None = None,
        models_dir: Path | None = None,
    ) -> None:
        """``registry`` defaults to the installed algorithms, discovered on the first request;
        the conformance kit passes one holding just the class under test. ``state_cache`` lets
        requests name recent states by sha256 (serve); ``models_dir`` holds stored models."""
        models = None
        if models_dir is not None:
            from .models_folder import ModelsFolder

            models = ModelsFolder(models_dir)
        self.states = States(state_cache, models)
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
                executed = execute(algorithm, request, self.states)
                del algorithm
            response = Response(
                request_id=request_id,
                result=executed.result,
                packed_arrays=request.packed_arrays,
                state=executed.state,
                state_sha256=executed.state_sha256,
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

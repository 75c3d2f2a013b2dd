"""The HTTP executor's Starlette app: routes, the bearer token, body bounds, the worker pool.

Every request envelope is answered by a ``serve`` worker of the pool (warden_algos/workers.py),
so the answer is byte for byte what ``run`` and ``serve`` give; this module only moves bytes and
bounds them. Blocking work (the pool's calls, JSON parsing of a large body) runs in threads,
admitted up to a fixed number so a burst cannot pile up threads: a slow request holds one worker
and one thread, never the event loop.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from warden_algos import contract_files
from warden_algos.httpexec.openapi import INTERFACES, openapi_document
from warden_algos.httpexec.statuses import PROBLEMS, REASON_HEADER, status_of
from warden_algos.workers import NodeError, Worker, WorkerPool

log = logging.getLogger("warden_algos.http")

#: Routes a load balancer or an orchestrator probes: answered without the token.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: Requests admitted beyond the workers' count, waiting (up to --queue-wait-s) for one to free.
WAITING_PER_WORKER = 4
#: A request every serve worker answers at once without running an algorithm (INVALID_INPUT):
#: the readiness probe, proof that a worker has started and reads its pipe.
PROBE = b"{}"
OK_PREFIX = b'{"status":"ok"'
#: A chunked body past the limit is still read (and dropped) up to this much more, so that a
#: client that sends it whole reads the 413: closing on unread input would reset the connection
#: and lose the answer. Beyond it, the connection is closed at once.
DRAIN_BYTES = 1 << 20


@dataclass(frozen=True)
class Settings:
    """What ``warden-algos http`` was started with (see its --help)."""

    workers: int = 2
    timeout_s: float | None = 60.0
    hard_grace_s: float = 2.0
    reply_slack_s: float = 10.0
    queue_wait_s: float = 10.0
    max_body_bytes: int = 64 * 1024 * 1024
    body_timeout_s: float = 30.0
    token: bytes | None = field(default=None, repr=False)  # never logged
    models_dir: Path | None = None
    log_level: str = "info"


def worker_command() -> list[str]:
    """How to start a serve worker of this very installation (frozen or not)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "serve"]
    return [sys.executable, "-m", "warden_algos", "serve"]


class Problem(Exception):
    """An error the executor answers itself, in the response envelope (statuses.PROBLEMS)."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        request_id: str | None = None,
        field: str | None = None,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.reason, self.message, self.request_id, self.field = reason, message, request_id, field
        self.close, self.headers = close, headers or {}

    def response(self) -> Response:
        problem = PROBLEMS.get(self.reason, PROBLEMS["WORKER_FAILED"])  # any other pool error
        envelope = {
            "status": "error",
            "request_id": self.request_id,
            "error": {"code": problem.code.value, "message": self.message, "field": self.field},
        }
        headers = {REASON_HEADER: self.reason, **self.headers}
        if self.close:  # the body was not read to its end: this connection cannot carry another
            headers["Connection"] = "close"
        return Response(orjson.dumps(envelope), problem.status, headers, "application/json")


class Executor:
    """The pool and its readiness, shared by every route."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = threading.Event()
        self.pool = WorkerPool(
            settings.workers,
            self._start_worker,
            queue_wait_s=settings.queue_wait_s,
            on_error=lambda message: log.warning(message),
        )
        admitted = settings.workers * (1 + WAITING_PER_WORKER)
        self.admission = anyio.CapacityLimiter(admitted)
        self.threads = anyio.CapacityLimiter(admitted)

    def _start_worker(self, generation: int) -> Worker:
        settings = self.settings
        extra = ["--log-level", settings.log_level, "--hard-grace-s", f"{settings.hard_grace_s:g}"]
        extra += ["--max-request-mb", str(-(-settings.max_body_bytes // (1 << 20)))]
        if settings.models_dir is not None:
            extra += ["--models-dir", str(settings.models_dir)]
        return Worker(
            worker_command(),
            generation,
            "json",
            settings.timeout_s,
            extra_args=extra,
            hard_grace_s=settings.hard_grace_s,
            reply_slack_s=settings.reply_slack_s,
            stderr=None,  # the workers' JSON log lines join ours on stderr
        )

    def start(self) -> None:
        """Start the workers, then prove each answers (a worker's first reply waits for its
        imports); only then is the executor ready."""
        self.pool.swap_in()
        probes = [
            threading.Thread(target=self.pool.invoke, args=(PROBE,), daemon=True)
            for _ in range(self.settings.workers)
        ]
        for probe in probes:
            probe.start()
        for probe in probes:
            probe.join()
        self.ready.set()
        log.info("workers ready", extra={"workers": self.settings.workers})

    def stop(self) -> None:
        self.ready.clear()
        self.pool.close()

    def answer(self, body: bytes, interface: str) -> tuple[bytes, int]:
        """The worker's reply and its HTTP status (blocking: run in a thread)."""
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError:
            envelope = None  # not JSON: the worker says so, in its words
        if isinstance(envelope, dict):
            named = envelope.get("interface")
            request_id = envelope.get("request_id")
            request_id = request_id if isinstance(request_id, str) else None
            if isinstance(named, str) and named != interface:
                raise Problem(
                    "WRONG_ROUTE",
                    f"this is a {named!r} request: post it to /v1/{named}, not /v1/{interface}",
                    request_id=request_id,
                    field="interface",
                )
        else:
            request_id = None
        try:
            reply = self.pool.invoke(body)
        except NodeError as error:
            raise Problem(error.code, str(error), request_id=request_id) from None
        if reply.startswith(OK_PREFIX):
            return reply, 200
        try:
            code = orjson.loads(reply)["error"]["code"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return reply, 500
        return reply, status_of(code)

    @cached_property
    def algorithms(self) -> bytes:
        """What ``list --json`` says, with each params schema (computed once, in a thread)."""
        from warden_algos.interfaces.trainable import is_trainable
        from warden_algos.registry import Registry, RegistryError

        registry = Registry.discover()
        rows: list[dict[str, Any]] = []
        for name in registry.names():
            row: dict[str, Any] = {"name": name, "source": registry.entries[name].source}
            try:
                algorithm_class = registry.load(name)
            except RegistryError as error:
                row["error"] = str(error)
            else:
                row.update(
                    interface=algorithm_class.interface,
                    summary=algorithm_class.summary,
                    trainable=is_trainable(algorithm_class),
                    params_schema=algorithm_class.params_schema(),
                )
            rows.append(row)
        return orjson.dumps({"algorithms": rows})


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, or a Problem: 413 past ``limit`` (from Content-Length before reading a
    byte, else as chunks arrive) and 408 when it takes longer than ``timeout_s`` in all."""
    length = request.headers.get("content-length")
    if length is not None:  # h11 has checked it is a number (and one)
        if not length.isdigit():
            raise Problem("BAD_LENGTH", f"malformed Content-Length {length!r}", close=True)
        if int(length) > limit:
            raise Problem(
                "TOO_LARGE", f"the body ({length} bytes) exceeds {limit} bytes", close=True
            )
    chunks: list[bytes] = []
    size = 0
    too_large = Problem("TOO_LARGE", f"the body exceeds {limit} bytes (chunked)", close=True)
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit + DRAIN_BYTES:
                    raise too_large
                if size <= limit:
                    chunks.append(chunk)
    except TimeoutError:
        if size > limit:
            raise too_large from None
        raise Problem(
            "BODY_TIMEOUT", f"the body did not arrive within {timeout_s:g} s", close=True
        ) from None
    if size > limit:
        raise too_large
    return b"".join(chunks)


def build_app(executor: Executor) -> ASGIApp:
    settings = executor.settings

    def interface_route(interface: str) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            try:
                body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s)
            except ClientDisconnect:
                return Response(status_code=400)  # nobody is there to read it
            try:
                executor.admission.acquire_nowait()
            except anyio.WouldBlock:
                raise Problem(
                    "NO_FREE_WORKER", "too many requests waiting for a worker; retry later"
                ) from None
            try:
                reply, status = await anyio.to_thread.run_sync(
                    executor.answer, body, interface, limiter=executor.threads
                )
            finally:
                executor.admission.release()
            return Response(reply, status, media_type="application/json")

        return route

    async def algorithms(request: Request) -> Response:
        payload = await anyio.to_thread.run_sync(lambda: executor.algorithms)
        return Response(payload, media_type="application/json")

    async def healthz(request: Request) -> Response:
        return Response(b'{"status":"up"}', media_type="application/json")

    async def readyz(request: Request) -> Response:
        pool = executor.pool
        ready = executor.ready.is_set()
        state = {
            "status": "ready" if ready else "starting",
            "workers": settings.workers,
            "idle": pool.idle.qsize(),
            "pids": pool.pids(),
            "served": pool.served,
            "replaced": pool.replaced,
        }
        return Response(orjson.dumps(state), 200 if ready else 503, media_type="application/json")

    openapi = contract_files.dump(openapi_document())

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    async def problem(request: Request, error: Exception) -> Response:
        assert isinstance(error, Problem)
        return error.response()

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == 405:
            reason, headers = "METHOD_NOT_ALLOWED", dict(error.headers or {})
        else:
            reason, headers = "NOT_FOUND", {}
        return Problem(reason, f"{request.method} {request.url.path}: {error.detail}",
                       headers=headers).response()  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        starter = threading.Thread(target=executor.start, name="http-workers", daemon=True)
        starter.start()  # /healthz answers at once, /readyz once the workers answer
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(executor.stop)

    routes = [
        *(Route(f"/v1/{name}", interface_route(name), methods=["POST"]) for name in INTERFACES),
        Route("/v1/algorithms", algorithms, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={Problem: problem, HTTPException: http_error},
        lifespan=lifespan,
    )
    return BearerToken(app, settings.token)


class BearerToken:
    """Every route but OPEN_PATHS needs ``Authorization: Bearer <token>``, compared in constant
    time; without a token configured, every route is open."""

    def __init__(self, app: ASGIApp, token: bytes | None) -> None:
        self.app, self.expected = app, None if token is None else b"Bearer " + token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guarded = scope["type"] == "http" and scope["path"] not in OPEN_PATHS
        if guarded and self.expected is not None:
            given = next(
                (value for name, value in scope["headers"] if name == b"authorization"), b""
            )
            if not hmac.compare_digest(given, self.expected):
                refused = Problem(
                    "UNAUTHORIZED",
                    "a valid bearer token is required (Authorization: Bearer ...)",
                    headers={"WWW-Authenticate": "Bearer"},
                    close=True,
                )
                await refused.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)

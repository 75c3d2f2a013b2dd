"""A node agent: serve-mode workers of ``DEST/current``, fed over loopback HTTP, swapped in place.

What a platform node does with delivery, small enough to run two or three of in a test: it pulls
its channel (on a timer, and when nudged with ``POST /pull``), and when a new release is installed
it starts workers from it and swaps them in: requests that are already running finish on the old
workers, which retire as they come back; new requests go to the new ones. No request fails
because of a deploy. ``GET /status`` says which release the node runs.

    POST /invoke   a request (any wire format the workers speak; JSON by default) -> the response
    POST /pull     pull now; answers the status after it
    GET  /status   {"release_id", "sha256", "workers", "served", "failed", "generation",
                    "last_error", "last_error_at", ...}

Hardening (issue 15); the worker pool and its bounds live in warden_algos/workers.py, shared with
the HTTP executor (``warden-algos http``):

- a worker's reply is length-checked: a worker that dies mid-answer (or sends fewer bytes than its
  frame header says) is killed and replaced, never reused, and the request is answered 502;
- every request is time-bounded: workers run with ``--timeout-s`` (default 60 s, ``None`` for no
  limit) and the node gives up on a worker that stays silent past that plus a grace (504, the
  worker is killed and replaced); a request that finds no free worker within ``queue_wait_s``
  answers 503 at once;
- HTTP input is checked before it is read: a strict ``Content-Length`` (400 when malformed, 411
  when missing, 413 above ``max_body_bytes``), a ``Host`` allow-list against DNS rebinding (the
  listen address and the localhost forms by default; 421 otherwise) and an optional bearer token
  (401 without it). Every error is a JSON ``{"error", "code"}`` body;
- the channel-polling thread survives any exception: it logs it, records it for ``/status``
  (``last_error``, ``last_error_at``) and retries with exponential backoff.
"""

from __future__ import annotations

import datetime
import hmac
import queue
import re
import socket
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from warden_algos import workers
from warden_algos.workers import (
    DEFAULT_QUEUE_WAIT_S,
    DEFAULT_TIMEOUT_S,
    NodeError,
    NoFreeWorker,
    Worker,
    WorkerFailed,
    WorkerPool,
    WorkerTimeout,
)

from .pull import PullResult, executable_in, installed, pull
from .store import ReleaseError, ReleaseStore

if TYPE_CHECKING:
    from .signing import TrustedKeys

__all__ = [
    "DEFAULT_QUEUE_WAIT_S",
    "DEFAULT_TIMEOUT_S",
    "NoFreeWorker",
    "NodeAgent",
    "NodeError",
    "Worker",
    "WorkerFailed",
    "WorkerTimeout",
]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# read when each worker starts (tests shorten them): the pool's defaults, named here
WORKER_HARD_GRACE_S = workers.WORKER_HARD_GRACE_S
REPLY_SLACK_S = workers.REPLY_SLACK_S
MAX_BACKOFF_S = 300.0
_DIGITS = re.compile(r"[0-9]{1,100}")  # int() refuses beyond 4300 digits


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class NodeAgent:
    def __init__(
        self,
        store: ReleaseStore,
        channel: str,
        dest: Path,
        *,
        workers: int = 2,
        format_name: str = "json",
        poll_s: float = 5.0,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        queue_wait_s: float = DEFAULT_QUEUE_WAIT_S,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allowed_hosts: Iterable[str] = (),
        token: str | None = None,
        trust: TrustedKeys | None = None,
    ) -> None:
        """``trust``: the pinned release keys; every pull then installs only what they signed
        (see ``pull.pull``)."""
        self.store, self.channel, self.dest = store, channel, dest
        self.trust = trust
        self.size, self.format_name, self.poll_s = workers, format_name, poll_s
        self.timeout_s, self.queue_wait_s = timeout_s, queue_wait_s
        self.max_body_bytes = max_body_bytes
        self.extra_hosts = {host.lower() for host in allowed_hosts}
        self.token = None if token is None else token.encode()
        # one reentrant lock for the pool (generation/idle swaps, its counters) and the node's own
        # counters and last error: the pool reports failures with it held
        self.lock = threading.RLock()
        self.pool = WorkerPool(
            workers,
            self._worker_starter(),
            queue_wait_s=queue_wait_s,
            on_error=self._note_error,
            lock=self.lock,
        )
        self.pull_lock = threading.Lock()
        self.failed = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.pull_failures = 0  # consecutive failed pulls (polling or nudged)
        self.stopping = threading.Event()
        self.watcher: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.pull_now()
        self.watcher = threading.Thread(target=self._watch, name="node-watch", daemon=True)
        self.watcher.start()

    @property
    def idle(self) -> queue.Queue[Worker]:
        return self.pool.idle

    @property
    def generation(self) -> int:
        return self.pool.generation

    @property
    def served(self) -> int:
        return self.pool.served

    @property
    def replaced(self) -> int:
        return self.pool.replaced

    def stop(self) -> None:
        self.stopping.set()
        self.pool.close()

    def _watch(self) -> None:
        """Pull every ``poll_s``; any failure is logged and kept for /status, never fatal."""
        while not self.stopping.wait(self._next_poll_s()):
            try:
                self.pull_now()
            except Exception as error:  # this thread must outlive anything
                print(
                    f"node: pull failed ({self.pull_failures} in a row), still serving, "
                    f"retrying in {self._next_poll_s():g} s: {type(error).__name__}: {error}",
                    file=sys.stderr,
                )

    def _next_poll_s(self) -> float:
        if self.pull_failures == 0:
            return self.poll_s
        backoff: float = self.poll_s * 2.0 ** min(self.pull_failures, 16)
        return max(self.poll_s, min(backoff, MAX_BACKOFF_S))

    def _note_error(self, message: str, pull_failed: bool = False) -> None:
        with self.lock:
            self.last_error, self.last_error_at = message, _now()
            if pull_failed:
                self.pull_failures += 1

    def pull_now(self) -> PullResult:
        """Pull (and swap in what it installed); a failure is counted and kept for /status."""
        with self.pull_lock:
            try:
                result = pull(self.store, self.channel, self.dest, trust=self.trust)
                if result.status == "installed" or self.generation == 0:
                    self._swap_in()
            except Exception as error:
                self._note_error(f"pull: {type(error).__name__}: {error}", pull_failed=True)
                raise
            with self.lock:
                self.pull_failures = 0
            return result

    def _start_worker(self, executable: Path, generation: int) -> Worker:
        return Worker(
            [str(executable), "serve"],
            generation,
            self.format_name,
            self.timeout_s,
            hard_grace_s=WORKER_HARD_GRACE_S,
            reply_slack_s=REPLY_SLACK_S,
        )

    def _worker_starter(self) -> workers.StartWorker:
        """Workers of what ``DEST/current`` is when each starts (a replacement included)."""

        def start(generation: int) -> Worker:
            executable = executable_in((self.dest / "current").resolve())
            return self._start_worker(executable, generation)

        return start

    def _swap_in(self) -> None:
        """Start the new release's workers first, then switch; old ones retire as they return."""
        release = installed(self.dest)
        if release is None:
            raise ReleaseError(f"nothing installed in {self.dest}: is {self.channel} promoted?")
        executable = executable_in((self.dest / "current").resolve())
        generation = self.pool.swap_in(
            lambda generation: self._start_worker(executable, generation)
        )
        self.pool.start_worker = self._worker_starter()
        print(f"node: serving {release.release_id} (generation {generation})", file=sys.stderr)

    # requests ----------------------------------------------------------------------------
    def invoke(self, body: bytes) -> bytes:
        """The reply of a free worker; NodeError (typed, with its HTTP status) otherwise."""
        return self.pool.invoke(body)

    def status(self) -> dict[str, Any]:
        release = installed(self.dest)
        with self.lock:
            return {
                "channel": self.channel,
                "release_id": None if release is None else release.release_id,
                "sha256": None if release is None else release.sha256,
                "generation": self.generation,
                "workers": self.size,
                "served": self.served,
                "failed": self.failed,
                "replaced": self.replaced,
                "timeout_s": self.timeout_s,
                "signatures_checked": self.trust is not None,
                "pull_failures": self.pull_failures,
                "polling": self.watcher is not None and self.watcher.is_alive(),
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
            }

    # HTTP --------------------------------------------------------------------------------
    def allowed_hosts(self, host: str, port: int) -> set[str]:
        """Host header values accepted: the listen address, the localhost forms, the extras;
        each bare and with the port."""
        names = {host.lower(), "localhost", "127.0.0.1", "[::1]", *self.extra_hosts}
        if ":" in host and not host.startswith("["):
            names.add(f"[{host.lower()}]")  # an IPv6 literal, as a Host header spells it
        return names | {f"{name}:{port}" for name in names}

    def serve_http(self, host: str, port: int) -> ThreadingHTTPServer:
        agent = self
        hosts: set[str] = set()

        class Refused(Exception):
            def __init__(self, status: int, code: str, message: str) -> None:
                super().__init__(message)
                self.status, self.code = status, code

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle(self._get)

            def do_POST(self) -> None:
                self._handle(self._post)

            def _handle(self, route: Any) -> None:
                try:
                    self._check_host()
                    self._check_token()
                    route()
                except Refused as refused:
                    self.close_connection = True  # the body (if any) was not read
                    self._error(refused.status, refused.code, str(refused))
                    self._linger()
                except Exception as error:  # a JSON 500, never an empty reply
                    self.close_connection = True
                    self._error(500, "INTERNAL", f"{type(error).__name__}: {error}")

            def _linger(self) -> None:
                """After an early answer: let the client read it before the socket closes
                (closing on unread input would reset the connection and lose the answer)."""
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_WR)
                    self.connection.settimeout(2)
                    drained = 0
                    while drained < (1 << 20) and (chunk := self.connection.recv(65536)):
                        drained += len(chunk)
                except OSError:
                    pass

            def _check_host(self) -> None:
                values = self.headers.get_all("Host") or []
                if len(values) != 1:
                    raise Refused(400, "BAD_HOST", "exactly one Host header is required")
                if values[0].strip().lower() not in hosts:
                    raise Refused(421, "MISDIRECTED", f"this node does not serve {values[0]!r}")

            def _check_token(self) -> None:
                if agent.token is None:
                    return
                given = (self.headers.get("Authorization") or "").encode("utf-8", "replace")
                if not hmac.compare_digest(given, b"Bearer " + agent.token):
                    raise Refused(401, "UNAUTHORIZED", "a valid bearer token is required")

            def _body(self, required: bool) -> bytes:
                if self.headers.get("Transfer-Encoding") is not None:
                    raise Refused(411, "LENGTH_REQUIRED", "send a Content-Length, not chunks")
                values = self.headers.get_all("Content-Length") or []
                if not values:
                    if required:
                        raise Refused(411, "LENGTH_REQUIRED", "a Content-Length is required")
                    return b""
                texts = {value.strip() for value in values}
                if len(texts) != 1 or not _DIGITS.fullmatch(next(iter(texts))):
                    raise Refused(400, "BAD_LENGTH", f"malformed Content-Length: {values!r}")
                length = int(next(iter(texts)))
                if length > agent.max_body_bytes:
                    raise Refused(
                        413,
                        "TOO_LARGE",
                        f"the body ({length} bytes) exceeds the limit of "
                        f"{agent.max_body_bytes} bytes",
                    )
                body = self.rfile.read(length)
                if len(body) != length:
                    raise Refused(400, "SHORT_BODY", f"got {len(body)} of {length} bytes")
                return body

            def _get(self) -> None:
                if self.path == "/status":
                    self._reply(200, orjson.dumps(agent.status()))
                else:
                    self._error(404, "NOT_FOUND", "not found")

            def _post(self) -> None:
                if self.path == "/invoke":
                    body = self._body(required=True)
                    try:
                        answer = agent.invoke(body)
                    except NodeError as error:
                        with agent.lock:
                            agent.failed += 1
                        self._error(error.status, error.code, str(error))
                    else:
                        self._reply(200, answer, json=agent.format_name == "json")
                elif self.path == "/pull":
                    self._body(required=False)
                    try:
                        result = agent.pull_now()
                    except Exception as error:  # reported; the node keeps serving
                        self._error(502, "PULL_FAILED", f"{type(error).__name__}: {error}")
                    else:
                        self._reply(200, orjson.dumps({**agent.status(), "pull": result.status}))
                else:
                    self._error(404, "NOT_FOUND", "not found")

            def _error(self, status: int, code: str, message: str) -> None:
                self._reply(status, orjson.dumps({"error": message, "code": code}))

            def _reply(self, status: int, payload: bytes, json: bool = True) -> None:
                self.send_response(status)
                if json:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 401:
                    self.send_header("WWW-Authenticate", "Bearer")
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # stdout/stderr stay quiet; /status carries the counters

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        hosts.update(self.allowed_hosts(host, server.server_port))
        return server

"""A pool of ``warden-algos serve`` workers, shared by the node agent and the HTTP executor.

Both front ends answer a request by handing its bytes to a long-lived serve process and returning
that process's reply; what makes that safe is the same in both, so it lives here once:

- a worker's reply is length-checked: a worker that dies mid-answer (or sends fewer bytes than its
  frame header says) is killed and replaced, never reused (``WorkerFailed``);
- every reply is time-bounded: a worker silent past its own ``--timeout-s`` plus a grace is killed
  and replaced (``WorkerTimeout``); a request that finds no free worker within ``queue_wait_s``
  fails at once (``NoFreeWorker``);
- workers carry a generation: a pool can be swapped whole (the node agent does, on each release);
  requests already running finish on the old workers, which retire as they come back.

Stdlib only, blocking calls: the node agent runs it on threads, the HTTP executor off its event
loop in a thread pool sized like the pool.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_QUEUE_WAIT_S = 10.0
WORKER_HARD_GRACE_S = 2.0  # the serve loop's default --hard-grace-s
REPLY_SLACK_S = 10.0  # on top of timeout + grace: time for the worker's TIMEOUT answer to arrive


class NodeError(Exception):
    """A request a pool could not answer with a worker's reply: an HTTP status and a code."""

    status = 500
    code = "INTERNAL"


class WorkerFailed(NodeError):
    """The worker died or its reply was cut short: it was killed and replaced (502)."""

    status = 502
    code = "WORKER_FAILED"


class WorkerTimeout(NodeError):
    """The worker did not answer within the bound: it was killed and replaced (504)."""

    status = 504
    code = "WORKER_TIMEOUT"


class NoFreeWorker(NodeError):
    """Every worker stayed busy for the whole wait bound (503)."""

    status = 503
    code = "NO_FREE_WORKER"


class Worker:
    """One ``serve`` process; ``command`` is what starts it, up to and including ``serve``."""

    def __init__(
        self,
        command: Sequence[str],
        generation: int,
        format_name: str,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        *,
        extra_args: Sequence[str] = (),
        hard_grace_s: float = WORKER_HARD_GRACE_S,
        reply_slack_s: float = REPLY_SLACK_S,
        stderr: int | IO[bytes] | None = subprocess.DEVNULL,
        env: dict[str, str] | None = None,
    ) -> None:
        self.generation = generation
        # always said explicitly: "none" only when the operator asked for no limit
        limit = "none" if timeout_s is None else f"{timeout_s:g}"
        argv = [*command, "--format", format_name, "--timeout-s", limit, *extra_args]
        # unbuffered pipes: replies are read with poll + os.read, against a deadline
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            bufsize=0,
            env=env,
        )
        # how long a reply may take: the worker answers TIMEOUT itself before this
        self.reply_bound_s = None if timeout_s is None else timeout_s + hard_grace_s + reply_slack_s

    @property
    def pid(self) -> int:
        return self.process.pid

    def ask(self, body: bytes) -> bytes:
        """The worker's reply, whole; WorkerFailed/WorkerTimeout otherwise (the caller kills it)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        deadline = None if self.reply_bound_s is None else time.monotonic() + self.reply_bound_s
        try:
            frame = memoryview(struct.pack(">I", len(body)) + body)
            while frame:  # a raw pipe may take part of it per write
                frame = frame[self.process.stdin.write(frame) or 0 :]
        except OSError as error:
            raise WorkerFailed(f"the worker did not take the request: {error}") from None
        header = self._read_exactly(4, deadline)
        (size,) = struct.unpack(">I", header)
        return self._read_exactly(size, deadline)

    def _read_exactly(self, size: int, deadline: float | None) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        poller = select.poll()  # not select(): descriptors past 1024 are fine
        poller.register(fd, select.POLLIN)
        chunks: list[bytes] = []
        have = 0
        while have < size:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise WorkerTimeout(f"the worker did not answer within {self.reply_bound_s:g} s")
            if not poller.poll(None if wait is None else max(1, int(wait * 1000))):
                continue
            chunk = os.read(fd, min(size - have, 1 << 20))
            if not chunk:
                try:  # its output closed: it is exiting, or it has
                    status: int | None = self.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    status = None
                raise WorkerFailed(
                    f"the worker's reply was cut short: got {have} of {size} bytes "
                    f"(exit status {status})"
                )
            chunks.append(chunk)
            have += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """End a healthy worker: close its input, it finishes and exits."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()

    def kill(self) -> None:
        """End a worker that can't be trusted with another request."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()


#: Starts one worker of the given generation (where the executable lives is the caller's business).
StartWorker = Callable[[int], Worker]


class WorkerPool:
    """``size`` workers of the current generation, lent out one request at a time."""

    def __init__(
        self,
        size: int,
        start_worker: StartWorker,
        *,
        queue_wait_s: float = DEFAULT_QUEUE_WAIT_S,
        on_error: Callable[[str], None] | None = None,
        lock: threading.RLock | None = None,
    ) -> None:
        """``on_error`` hears every failure (a worker lost, a replacement that would not start),
        so its owner can report the last one; it may be called with ``lock`` held, which is
        reentrant so the owner can share it (one lock for the pool and its own counters)."""
        self.size, self.start_worker, self.queue_wait_s = size, start_worker, queue_wait_s
        self.on_error = on_error
        self.generation = 0
        self.idle: queue.Queue[Worker] = queue.Queue()
        # guards generation/idle swaps and the counters
        self.lock: threading.RLock = lock if lock is not None else threading.RLock()
        self.served = 0
        self.replaced = 0

    def swap_in(self, start_worker: StartWorker | None = None) -> int:
        """Start a new generation's workers first, then switch; old ones retire as they return.
        The first call fills the pool. Returns the new generation."""
        if start_worker is not None:
            self.start_worker = start_worker
        generation = self.generation + 1
        fresh = [self.start_worker(generation) for _ in range(self.size)]
        with self.lock:
            self.generation = generation
            retired = self._drain()
            for worker in fresh:
                self.idle.put(worker)
        for worker in retired:
            worker.close()
        return generation

    def _drain(self) -> list[Worker]:
        taken: list[Worker] = []
        while True:
            try:
                taken.append(self.idle.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        """End the idle workers; busy ones are ended as they come back (their generation is
        gone)."""
        with self.lock:
            self.generation += 1
            retired = self._drain()
        for worker in retired:
            worker.close()

    def invoke(self, body: bytes) -> bytes:
        """The reply of a free worker; NodeError (typed, with its HTTP status) otherwise."""
        deadline = time.monotonic() + self.queue_wait_s
        while True:
            try:
                worker = self.idle.get(timeout=max(0.0, min(0.1, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise NoFreeWorker(
                        f"no free worker within {self.queue_wait_s:g} s (all {self.size} busy)"
                    ) from None
                continue
            if worker.generation != self.generation:  # taken just before a swap: retire it
                worker.close()
                continue
            if worker.process.poll() is not None:  # died while idle (killed from outside)
                worker.kill()
                self._replace(worker)
                self._error(f"invoke: a worker had exited (status {worker.process.returncode})")
                continue
            try:
                answer = worker.ask(body)
            except NodeError as error:
                worker.kill()  # never reused: its output stream is out of step, or it is gone
                self._replace(worker)
                self._error(f"invoke: {error.code}: {error}")
                raise
            except BaseException:
                worker.kill()
                self._replace(worker)
                raise
            self._give_back(worker)
            with self.lock:
                self.served += 1
            return answer

    def _error(self, message: str) -> None:
        if self.on_error is not None:
            self.on_error(message)

    def _give_back(self, worker: Worker) -> None:
        with self.lock:
            current = worker.generation == self.generation
            if current:
                self.idle.put(worker)
        if not current:
            worker.close()

    def _replace(self, dead: Worker) -> None:
        with self.lock:
            if dead.generation != self.generation:
                return
            try:
                self.idle.put(self.start_worker(self.generation))
            except OSError as error:
                self._error(f"could not start a replacement worker: {error}")
                return
            self.replaced += 1

    def pids(self) -> list[int]:
        """The idle workers' process ids (busy ones are out on a request)."""
        return [worker.pid for worker in list(self.idle.queue)]

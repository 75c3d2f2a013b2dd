"""Per-request time limits, in two layers.

The soft layer arms ``SIGALRM``; its handler raises ``RequestTimeout`` in the main thread as soon as
Python code runs again, which covers sleeping, I/O and any algorithm that returns to the interpreter
now and then. It costs two system calls per request.

The hard layer is a watchdog thread for what the soft one cannot stop: an algorithm that swallows
the exception, or C code that never returns. When the deadline plus a grace period has passed, the
watchdog claims the request (so the main thread can no longer answer it), and calls ``on_expire``,
which answers ``TIMEOUT`` and then replaces or ends the process. Exactly one side answers.

What neither layer can stop: C code that holds the GIL and never returns (the watchdog thread
needs the GIL to run). That process is stuck for good; the host's own deadline, which kills and
replaces a worker that does not answer, is the last line of defence (see the JVM host harness).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from warden_algos.interfaces.errors import RequestTimeout


class DeadlineExceeded(BaseException):
    """Raised inside the algorithm by the alarm. A BaseException, like KeyboardInterrupt, so that
    an algorithm's ``except Exception`` cannot swallow it; ``SoftDeadline`` turns it into
    ``RequestTimeout`` on the way out."""


class SoftDeadline:
    """Context manager: ``RequestTimeout`` in the main thread after ``seconds``."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._armed = False
        self._usable = bool(seconds) and threading.current_thread() is threading.main_thread()
        if self._usable:
            signal.signal(signal.SIGALRM, self._on_alarm)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            self._armed = False
            raise DeadlineExceeded

    def __enter__(self) -> SoftDeadline:
        if self._usable and self.seconds:
            self._armed = True
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._usable:
            self._armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(exc, DeadlineExceeded):
            raise RequestTimeout(
                f"the request did not finish within {self.seconds:g} s (--timeout-s)"
            ) from None


class Watchdog:
    """Hard deadline for the request in progress; see the module docstring."""

    def __init__(self, seconds: float, grace_s: float, on_expire: Callable[[], None]):
        self.limit_s = seconds + grace_s
        self._on_expire = on_expire
        self._lock = threading.Condition()
        self._deadline: float | None = None
        self._generation = 0
        self._claimed = False
        self._idle = False  # the watcher waits for a request, with no deadline to time
        threading.Thread(target=self._watch, name="warden-watchdog", daemon=True).start()

    def begin(self) -> None:
        """Arm the deadline. The watcher is woken only when it is idle: while it sleeps until
        an earlier request's deadline it will find this later one when it wakes, so a request
        costs no thread switch (waking it on every request cost ~100 us of each round trip)."""
        with self._lock:
            self._generation += 1
            self._deadline = time.monotonic() + self.limit_s
            if self._idle:
                self._lock.notify()

    def end(self) -> bool:
        """False when the watchdog already answered this request: the caller must not write."""
        with self._lock:
            self._deadline = None
            return not self._claimed

    def _watch(self) -> None:
        while True:
            with self._lock:
                while self._deadline is None:
                    self._idle = True
                    self._lock.wait()
                self._idle = False
                generation = self._generation
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._lock.wait(remaining)
                    continue
                if self._generation != generation or self._deadline is None:
                    continue
                self._claimed = True
            self._on_expire()
            return

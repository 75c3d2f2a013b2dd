"""Capture what reaches stdout while an algorithm runs, whichever way it writes.

``print`` (even when a test runner has replaced ``sys.stdout``), ``sys.stdout.write``, C's
``printf`` and child processes all end up on file descriptor 1; in production that descriptor
carries the protocol, so the conformance kit has to see every one of them.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def stdout_capture() -> Iterator[Callable[[], bytes]]:
    """Yield a function returning what was written to stdout in the block (valid after it)."""
    captured: list[bytes] = []
    with tempfile.TemporaryFile() as sink:
        saved_fd = os.dup(1)
        saved_stdout = sys.stdout
        saved_stdout.flush()
        os.dup2(sink.fileno(), 1)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        try:
            yield lambda: b"".join(captured)
        finally:
            sys.stdout.flush()
            sys.stdout = saved_stdout
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
            sink.seek(0)
            captured.append(sink.read())

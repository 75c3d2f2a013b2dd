"""Keep stdout for protocol bytes only.

``claim_stdout`` duplicates the real stdout to a private descriptor for the protocol, then points
descriptor 1 (and ``sys.stdout``) at stderr. After that, a ``print`` in an algorithm, a C library's
``printf`` and a child process's output all land on stderr, and only the dispatcher, holding the
private descriptor, can write to the host.
"""

from __future__ import annotations

import contextlib
import os
import sys


def claim_stdout() -> int:
    """Returns the private protocol descriptor (not inherited by child processes)."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


def restore_stdout(protocol_fd: int) -> None:
    """Put the protocol descriptor back on fd 1, e.g. before the process replaces itself."""
    os.dup2(protocol_fd, 1)

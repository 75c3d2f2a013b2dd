"""The onefile executable's unpacked copy: claimed while in use, swept once its process is gone.

A onefile executable unpacks itself into ``$TMPDIR/_MEIxxxxxx`` and its bootloader deletes that
folder when the program exits, however it exits, except when the bootloader itself is killed
with SIGKILL (a host enforcing a deadline does exactly that): then ~200 MB stay behind on every
kill. So each run claims its folder with a shared ``flock`` on a marker file, and each start sweeps
the sibling folders that carry our marker but whose lock nobody holds any more. A lock dies with
its last holder, so a folder is never swept while a process (or a process it forked, or the fresh
copy a hard timeout ``exec``s) still runs from it; folders of other PyInstaller programs carry no
marker and are never touched. The marker appears only once it is locked (written under a
temporary name, locked, then renamed), so a concurrent start cannot mistake a folder that is being
claimed for an abandoned one.

Kept to ``os`` and ``fcntl``: it runs before anything else in the executable.
"""

from __future__ import annotations

import fcntl
import os
import sys

MARKER = ".warden-algos-runtime.lock"
PREFIX = "_MEI"

_held: list[int] = []  # the claim's descriptor, held (and inherited across exec) for life


def onefile_runtime_dir() -> str | None:
    """The folder a onefile executable unpacked itself into; None unfrozen or onedir."""
    meipass = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or meipass is None:
        return None
    return meipass if os.path.basename(meipass).startswith(PREFIX) else None


def claim(folder: str) -> None:
    """Hold a shared lock on ``folder``'s marker for as long as this process (or its exec) lives."""
    temporary = os.path.join(folder, f"{MARKER}.{os.getpid()}")
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.replace(temporary, os.path.join(folder, MARKER))
    os.set_inheritable(fd, True)  # a hard-timeout restart execs: the claim must survive it
    _held.append(fd)


def sweep(parent: str, keep: str) -> list[str]:
    """Delete the abandoned runtime folders of this program under ``parent``; returns them."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or entry.path == keep:
            continue
        try:
            fd = os.open(os.path.join(entry.path, MARKER), os.O_RDONLY)
        except OSError:
            continue  # not ours, or not claimed yet
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # in use
        try:
            import shutil  # only when there is something to remove: it costs a start ~3 ms

            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        finally:
            os.close(fd)
    return removed


def claim_and_sweep() -> None:
    """Called first thing by the frozen entry point; a no-op outside a onefile executable."""
    folder = onefile_runtime_dir()
    if folder is None:
        return
    try:
        claim(folder)
        swept = sweep(os.path.dirname(folder), keep=folder)
    except OSError as error:  # never fail a request over housekeeping
        print(f"warden-algos: runtime folder housekeeping failed: {error}", file=sys.stderr)
        return
    for path in swept:
        print(f"warden-algos: removed abandoned runtime folder {path}", file=sys.stderr)

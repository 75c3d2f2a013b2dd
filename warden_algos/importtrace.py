"""``-X importtime`` for the frozen executable, switched on by ``WARDEN_IMPORTTIME=1``.

A PyInstaller executable ignores ``PYTHONPROFILEIMPORTTIME`` and ``-X`` options (its interpreter is
configured by the bootloader, not by the environment), so the only way to see what a frozen start
imports, and what each import costs, is to time the imports from inside. Every ``import`` statement
that loads a module goes through ``importlib._bootstrap._find_and_load``, looked up by name on each
call; wrapping it gives the same lines, in the same format, that CPython's ``-X importtime`` writes,
so the usual tools (``tuna``, ``sort -t'|' -k2``) read both. Unfrozen, use ``python -X importtime``.

Kept dependency-free: it must be importable before anything it is meant to measure.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

ENVIRONMENT_VARIABLE = "WARDEN_IMPORTTIME"
HEADER = "import time: self [us] | cumulative | imported package\n"


def install(stream: IO[str] | None = None) -> None:
    """Trace every module loaded from now on, one line each when its import finishes."""
    # The import system's own module: registered as _frozen_importlib at start-up, and also as
    # importlib._bootstrap only once something has imported importlib (not in a bare start).
    bootstrap: Any = sys.modules["_frozen_importlib"]
    original: Callable[[str, Any], Any] = bootstrap._find_and_load
    if getattr(original, "__warden_traced__", False):
        return
    out = stream if stream is not None else sys.stderr
    local = threading.local()

    def traced(name: str, import_: Any) -> Any:
        children: list[int] = getattr(local, "children", None) or []
        local.children = children
        children.append(0)
        started = time.perf_counter_ns()
        try:
            return original(name, import_)
        finally:
            cumulative = (time.perf_counter_ns() - started) // 1000
            own = cumulative - children.pop()
            if children:
                children[-1] += cumulative
            indent = "  " * len(children)
            out.write(f"import time: {own:>9} | {cumulative:>10} | {indent}{name}\n")

    traced.__warden_traced__ = True  # type: ignore[attr-defined]
    out.write(HEADER)
    bootstrap._find_and_load = traced


def install_if_requested() -> None:
    if os.environ.get(ENVIRONMENT_VARIABLE, "") not in ("", "0"):
        install()


def parse(trace: str) -> dict[str, tuple[int, int]]:
    """Module name -> (self us, cumulative us) from ``-X importtime``-format text."""
    modules: dict[str, tuple[int, int]] = {}
    for line in trace.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|", 2)
        modules[name.strip()] = (int(own), int(cumulative))
    return modules

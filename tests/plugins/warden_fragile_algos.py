"""A plugin that imports fine where it is installed and built, but not where it runs.

That is what a frozen executable sees when PyInstaller missed one of a plugin's dependencies: the
build (and the registry baked into it) lists the algorithm, and the first request for it fails to
import its module. ``WARDEN_TEST_BREAK_IMPORT=1`` in the environment stands for the missing
dependency, so a test can break the import of an already-built executable from outside. The
registry must turn that failure into INTERNAL (a broken installation), never into a crash or into
ALGORITHM_FAILED (the algorithm itself did nothing wrong).

``WARDEN_TEST_FROZEN_DIFFERS=1`` makes it answer differently only inside a frozen executable (one
detection instead of none), like a plugin whose frozen dependency behaves differently: what
``warden-algos build --verify`` exists to catch.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from warden_algos.interfaces import DetectAlgorithm, DetectResult, F64Array, I64Array

BREAK_IMPORT_ENV = "WARDEN_TEST_BREAK_IMPORT"
FROZEN_DIFFERS_ENV = "WARDEN_TEST_FROZEN_DIFFERS"

if os.environ.get(BREAK_IMPORT_ENV) == "1":
    raise ImportError(
        f"warden_fragile_algos cannot load: a dependency is missing ({BREAK_IMPORT_ENV}=1)"
    )


class Fragile(DetectAlgorithm):
    name = "test_fragile"
    summary = "Finds nothing; its module fails to import when WARDEN_TEST_BREAK_IMPORT=1."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        if getattr(sys, "frozen", False) and os.environ.get(FROZEN_DIFFERS_ENV) == "1":
            return DetectResult(timestamps[:1].copy(), np.ones(min(1, timestamps.size)))
        return DetectResult(np.empty(0, dtype=np.int64), np.empty(0))

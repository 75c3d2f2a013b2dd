"""The built-in library as a whole: every algorithm passes the author contract, documents when to
use it, reports one detection per run of flagged points, and stays light to list."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from warden_algos.interfaces import DetectAlgorithm
from warden_algos.registry import BUILTIN_ALGORITHMS, Registry, is_detect
from warden_algos.testing import check_algorithm

REGISTRY = Registry.discover()
DETECTORS = [n for n in BUILTIN_ALGORITHMS if is_detect(REGISTRY.load(n))]
HEAVY = ("scipy", "pandas", "prophet", "matplotlib", "cmdstanpy", "sklearn")


@pytest.mark.parametrize("name", [n for n in BUILTIN_ALGORITHMS if n != "prophet"])
def test_every_builtin_passes_the_contract_checks(name: str) -> None:
    check_algorithm(REGISTRY.load(name))


@pytest.mark.parametrize("name", list(BUILTIN_ALGORITHMS))
def test_every_builtin_says_when_to_use_it(name: str) -> None:
    cls = REGISTRY.load(name)
    text = cls.description().lower()
    assert len(text) > 200, name
    assert "use it" in text or "use when" in text or "use this" in text, name
    for field_name, info in cls.Params.model_fields.items():
        assert info.description, f"{name}.{field_name} has no description"


def _incident_series() -> tuple[Any, Any]:
    rng = np.random.default_rng(7)
    n = 3000
    times = 1_600_000_000 + 300 * np.arange(n, dtype=np.int64)
    values = 10 + np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 0.1, n)
    values[2000:2012] += 25.0  # one incident: a dozen consecutive points far out
    return times, values


@pytest.mark.parametrize("name", [n for n in DETECTORS if n != "prophet"])
def test_every_detector_reports_an_incident_once_unless_asked(name: str) -> None:
    cls: type[DetectAlgorithm[Any]] = REGISTRY.load(name)  # type: ignore[assignment]
    times, values = _incident_series()
    values[2500:2700] += 6.0  # and a persistent shift, for the detectors that ignore bursts
    grouped = cls().detect([], times, values)
    every = cls(every_point=True).detect([], times, values)
    assert every.timestamps.size > 0, name
    rows = np.searchsorted(times, every.timestamps)
    run_starts = rows[np.r_[True, np.diff(rows) > 1]]
    # One detection per run at its first point; a detector may merge nearby runs into one
    # incident (novelty's refractory period), never split one.
    assert set(grouped.timestamps.tolist()) <= set(times[run_starts].tolist()), name
    assert grouped.timestamps.size >= 1, name
    assert every.timestamps.size > grouped.timestamps.size, name  # the incident spans points


def test_listing_the_library_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from warden_algos.registry import Registry\n"
        "registry = Registry.discover()\n"
        "for name in registry.names():\n"
        "    registry.load(name)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout

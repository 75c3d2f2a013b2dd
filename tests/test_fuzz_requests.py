"""Hypothesis over the params of every built-in and requests of every awkward shape, each
algorithm in its own process (tests/fuzz_probe.py): every answer is ``ok`` or a refusal
(``INVALID_INPUT`` / ``INVALID_PARAMS``), never ``ALGORITHM_FAILED``, ``INTERNAL`` or
``TIMEOUT``; no case takes more than half a minute; the process stays under 2 GiB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from warden_algos.registry import BUILTIN_ALGORITHMS

PROBE = Path(__file__).resolve().parent / "fuzz_probe.py"
#: The slow ones (prophet, the autoencoder's fits); 60 for the rest.
EXAMPLES = {"prophet": 15, "ensemble": 30, "spectral_residual": 25, "autoencoder": 30}
WORST_CASE_S = 30.0
PEAK_RSS_MIB = 2048


@pytest.mark.parametrize("name", sorted(BUILTIN_ALGORITHMS))
def test_fuzzed_requests_are_answered_or_refused_within_bounds(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(PROBE), name, str(EXAMPLES.get(name, 60))],
        capture_output=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    stats = orjson.loads(done.stdout.splitlines()[-1])
    assert stats["cases"] >= EXAMPLES.get(name, 60)
    assert stats["failures"] == [], orjson.dumps(stats["failures"][:2]).decode()[:4000]
    assert stats["worst_s"] < WORST_CASE_S, stats.get("worst_params")
    assert stats["max_rss_mib"] < PEAK_RSS_MIB
    assert "ok" in stats["codes"]  # the strategy reaches the algorithm, not only refusals


def test_mad_with_a_denormal_tail_rate_is_the_pure_mad() -> None:
    """Found by the fuzzing: tail_rate=5e-324 made 1 - rate/2 == 1.0 and the normal quantile
    raised (ALGORITHM_FAILED)."""
    import numpy as np

    from warden_algos.algorithms.mad import Mad
    from warden_algos.interfaces import run_detect

    times = 1_700_000_000 + 60 * np.arange(300)
    values = np.random.default_rng(0).normal(0, 1, 300)
    values[250] = 50
    tiny = run_detect(Mad(tail_rate=5e-324), times, values)
    pure = run_detect(Mad(tail_rate=0.0), times, values)
    assert tiny.timestamps.tolist() == pure.timestamps.tolist() == [times[250]]

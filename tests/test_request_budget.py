"""Bounded work per request: an amplifying request (small on the wire, huge in what the algorithm
would derive from it) is refused with INVALID_INPUT naming the limit, in milliseconds and without
the memory, before the algorithm runs; the budget is configurable, ``none`` included; a serve
process answers the next request as if nothing happened."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import numpy as np
import orjson
import pytest

from warden_algos.algorithms.adtributor import Adtributor
from warden_algos.algorithms.spectral_residual import SpectralResidual
from warden_algos.interfaces import InvalidInput, TimeSeries, run_detect, run_rca
from warden_algos.interfaces.budget import Budget, InputShape, check_budget, current_budget

from .conftest import detect_request, dumps

#: Runs ``python -m warden_algos run`` as its only child and prints that child's peak RSS (KiB)
#: on its last stderr line, after the child's own output: the measure cannot include anything
#: else this test process ever started.
MEASURED_RUN = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "warden_algos", "run"], stdin=sys.stdin)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(done.returncode)
"""


def measured_run(
    request: bytes, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], int, float]:
    """(response, peak RSS in MiB, seconds) of one one-shot run."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED_RUN],
        input=request,
        capture_output=True,
        timeout=300,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    peak_kib = int(done.stderr.decode().strip().splitlines()[-1])
    return orjson.loads(done.stdout), peak_kib // 1024, seconds


def amplifying_rca_request(anomalies: int, seasons: int) -> bytes:
    """About 10 MiB on the wire: three small slices and a million anomaly times."""
    times = list(range(1_700_000_000, 1_700_000_000 + 60 * 200, 60))
    related = [
        {"dimensions": {"dc": name}, "times": times, "values": [1.0] * len(times)}
        for name in ("a", "b", "c")
    ]
    return json.dumps(
        {
            "interface": "rca",
            "algorithm": "adtributor",
            "params": {"seasons": seasons, "tolerance_s": 86_400},
            "rca": {
                "metric_of_interest": {"dimensions": {}, "times": times, "values": [3.0] * 200},
                "related_metrics": related,
                "k": 3,
                "anomalies": list(range(1_600_000_000, 1_600_000_000 + anomalies)),
            },
        }
    ).encode()


def test_adtributor_amplification_is_refused_before_any_allocation() -> None:
    """The review's case: 1M anomaly times x seasons=100 drove one worker to 7 GB."""
    request = amplifying_rca_request(1_000_000, 100)
    assert len(request) < 12 << 20
    response, peak_mib, seconds = measured_run(request)
    assert response["error"]["code"] == "INVALID_INPUT"
    assert "WARDEN_MAX_REQUEST_MB" in response["error"]["message"]
    assert "adtributor would need about" in response["error"]["message"]
    assert peak_mib < 1024, peak_mib  # what decoding the 10 MiB costs, not the 7 GB
    assert seconds < 30


def test_spectral_residual_with_a_huge_window_is_refused_at_once() -> None:
    """window=100,000 on 100,000 points: one transform per point of up to that width (> 400 s)."""
    algorithm = SpectralResidual(window=100_000, score_window=100)
    times = 1_700_000_000 + 60 * np.arange(100_000)
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="WARDEN_MAX_REQUEST_MOPS"):
        run_detect(algorithm, times, np.zeros(100_000))
    assert time.perf_counter() - started < 1.0


def test_ordinary_requests_are_far_inside_the_default_budget() -> None:
    budget = current_budget()
    assert budget.peak_bytes is not None and budget.operations is not None
    day = InputShape(points=1440, series=1, longest=1440)
    for algorithm in (SpectralResidual(), Adtributor()):
        estimate = algorithm.estimate(day)
        assert estimate.peak_bytes * 10 < budget.peak_bytes
        assert estimate.operations * 100 < budget.operations
    # a million points at the default window is still accepted (it takes seconds, not minutes)
    check_budget("spectral_residual", SpectralResidual().estimate(InputShape(10**6, 1, 10**6)))


def test_estimates_grow_with_what_the_work_grows_with() -> None:
    shape = InputShape(points=1000, series=4, longest=250, anomalies=10)
    small, large = Adtributor(seasons=1).estimate(shape), Adtributor(seasons=50).estimate(shape)
    assert large.peak_bytes > small.peak_bytes and large.operations > small.operations
    narrow = SpectralResidual(window=128).estimate(InputShape(10**5, 1, 10**5))
    wide = SpectralResidual(window=4096).estimate(InputShape(10**5, 1, 10**5))
    assert wide.operations > 20 * narrow.operations


def test_rca_is_checked_too() -> None:
    times = 1_700_000_000 + 60 * np.arange(10)
    moi = TimeSeries({}, times, np.ones(10))
    related = [
        TimeSeries({"dc": "a"}, times, np.ones(10)),
        TimeSeries({"dc": "b"}, times, np.ones(10)),
    ]
    run_rca(Adtributor(), moi, related, 2, times[:2])  # fine
    with pytest.raises(InvalidInput, match="MiB"):
        check_budget(
            "adtributor",
            Adtributor(seasons=100).estimate(InputShape(30, 3, 10, anomalies=10**6)),
            Budget(peak_bytes=1 << 30, operations=None),
        )


def run_env(**variables: str) -> dict[str, str]:
    import os

    return {**os.environ, **variables}


@pytest.mark.parametrize(
    ("setting", "code"), [("0.001", "INVALID_INPUT"), ("none", None), ("1000", None)]
)
def test_the_budget_is_configurable_and_none_turns_it_off(setting: str, code: str | None) -> None:
    """ksigma on 1,000 points estimates 4,000 operations: over a budget of 1,000, inside 10^9."""
    request = dumps(detect_request("ksigma", n=1000))
    done = subprocess.run(
        [sys.executable, "-m", "warden_algos", "run"],
        input=request,
        capture_output=True,
        env=run_env(WARDEN_MAX_REQUEST_MOPS=setting),
        timeout=60,
        check=False,
    )
    response = orjson.loads(done.stdout)
    if code is None:
        assert response["status"] == "ok", response
    else:
        assert response["error"]["code"] == code
        assert "budget of 0 million" in response["error"]["message"]


def test_a_budget_that_cannot_be_read_is_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warden_algos", "run"],
        input=dumps(detect_request("ksigma")),
        capture_output=True,
        env=run_env(WARDEN_MAX_REQUEST_MB="lots"),
        timeout=60,
        check=False,
    )
    response = orjson.loads(done.stdout)
    assert response["error"]["code"] == "INVALID_INPUT"
    assert "WARDEN_MAX_REQUEST_MB='lots' is not a number" in response["error"]["message"]


def test_serve_answers_the_next_request_after_a_refusal(serve_factory: Any) -> None:
    process = serve_factory()
    refused = process.ask(orjson.loads(amplifying_rca_request(1_000_000, 100)))
    assert refused["error"]["code"] == "INVALID_INPUT"
    answered = process.ask(detect_request("ksigma"))
    assert answered["status"] == "ok"
    assert process.close() == 0


def test_serve_has_a_default_timeout_and_none_is_said_explicitly() -> None:
    from warden_algos.cli import SERVE_DEFAULT_TIMEOUT_S, build_parser

    parser = build_parser()
    assert parser.parse_args(["serve"]).timeout_s == SERVE_DEFAULT_TIMEOUT_S == 60.0
    assert parser.parse_args(["serve", "--timeout-s", "none"]).timeout_s is None
    assert parser.parse_args(["serve", "--timeout-s", "2.5"]).timeout_s == 2.5
    assert parser.parse_args(["run"]).timeout_s is None  # the host owns a one-shot process
    done = subprocess.run(
        [sys.executable, "-m", "warden_algos", "serve", "--timeout-s", "0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and b"must be > 0" in done.stderr


def test_a_json_list_that_would_explode_when_decoded_is_refused_before_parsing() -> None:
    """The review's case: 120 MiB of zeros peaked at 3.5 GB while being decoded."""
    zeros = b",".join([b"0"] * 60_000_000)
    request = (
        b'{"interface":"detect","algorithm":"ksigma","request_id":"zeros","detect":'
        b'{"timestamps":[1],"values":[' + zeros + b"]}}"
    )
    assert len(request) < 128 << 20
    response, peak_mib, _ = measured_run(request)
    assert response["error"]["code"] == "INVALID_INPUT"
    assert "decoding this request would take about" in response["error"]["message"]
    assert peak_mib < 800, peak_mib  # the request bytes, held twice at most


def test_millions_of_tiny_related_metrics_are_refused_before_parsing() -> None:
    """The review's case: 4.1M tiny related metrics took 5.9 GB and a minute to be refused."""
    metric = b'{"dimensions":{},"times":[],"values":[]}'
    request = (
        b'{"interface":"rca","algorithm":"correlation","rca":{"metric_of_interest":'
        b'{"dimensions":{},"times":[1],"values":[1]},"k":1,"anomalies":[1],'
        b'"related_metrics":[' + b",".join([metric] * 2_500_000) + b"]}}"
    )
    response, peak_mib, seconds = measured_run(request)
    assert response["error"]["code"] == "INVALID_INPUT"
    assert "in 5,000,004 objects" in response["error"]["message"]  # metrics and dimensions
    assert peak_mib < 800 and seconds < 30


def test_seasonal_with_the_reviews_params_is_refused_at_once() -> None:
    """cycles=52, phase_tolerance=100, window=1e6 took 158 s on the review's series."""
    from warden_algos.algorithms.seasonal import Seasonal

    times = 1_700_000_000 + 300 * np.arange(100_000)
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="seasonal would do about"):
        run_detect(
            Seasonal(cycles=52, phase_tolerance=100, window=1_000_000), times, np.ones(100_000)
        )
    assert time.perf_counter() - started < 1.0


def test_seasonal_rechecks_the_budget_with_the_grid_its_gaps_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gap of 10^12 s makes up to 20 grid slots per point (at a million points, the review's
    1.67 GB); the count-only estimate cannot see it, so detect checks again once the grid is
    known, before the profiles are built."""
    from warden_algos.algorithms.seasonal import Seasonal

    n = 20_000
    regular = 1_700_000_000 + 300 * np.arange(n, dtype=np.int64)
    gapped = regular.copy()
    gapped[n // 2 :] += 10**12
    values = 10 + np.sin(np.arange(n) * 2 * np.pi / 288)
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MB", "150")  # regular: ~125 MiB, gapped: ~154 MiB
    run_detect(Seasonal(), regular, values)  # one slot per point: inside
    with pytest.raises(InvalidInput, match="WARDEN_MAX_REQUEST_MB"):
        run_detect(Seasonal(), gapped, values)

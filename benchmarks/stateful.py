"""Stateful detectors: what streaming with a fitted state saves over resending the history.

    python benchmarks/stateful.py [--algorithm NAME ...] [--calls N] [--quick] [--merge]

For every trainable built-in, a 30-day series at 1-minute resolution (43,200 points: a daily
cycle, noise, spikes) goes to one long-lived ``serve`` process (JSON frames over pipes, as a host
sends them; requests encoded outside the timed loop):

- **stateless**: today's call, the whole history in every request (no band back);
- **streaming, state inline**: one new point and the state the previous call returned;
- **streaming, by reference**: one new point and the previous state's sha256 (the serve
  process's cache), the state coming back each time;
- **streaming, sha256 only**: by reference, and the process keeps the new state and answers only
  its sha256 (``return_state_sha256_only``): no state bytes in either direction;
- the same, to a process started with ``--poll-us 1000`` (it polls for the next frame before
  blocking, so its CPU is awake when the request comes).

Also the floor under every streaming figure, measured first: a pipe round trip of a 200-byte
frame to a child that echoes it, with the child blocking and polling (on a VM, waking an idle
vCPU is much of a round trip).

The baseline is the stateless call measured in the same process; the ratio stateless / streaming
is the issue's target (>= 50x). Also: the state's size after the 30 days and after 10 days (a
streaming detector's state must not grow with history), and the fit time of 1,000 series of
10,000 points on one core (in-process ``run_fit``; prophet on fewer series, scaled). Results go
to ``benchmarks/results/stateful.json``; with ``--merge``, the named algorithms' rows replace
theirs in it and the other rows stay.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.interfaces.run_state import run_fit
from warden_algos.registry import Registry

RESULTS = Path(__file__).resolve().parent / "results" / "stateful.json"
DAY = 1440
console = Console(width=140)


def month(n: int = 30 * DAY, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    minutes = np.arange(n)
    values = 100 + 20 * np.sin(2 * np.pi * minutes / DAY) + rng.normal(0, 2, n)
    values[rng.choice(n, max(1, n // 2000), replace=False)] += 60
    return 1_700_000_000 + 60 * minutes.astype(np.int64), values


ECHO = """
import os, select, struct, sys, time
spin = float(sys.argv[1])
poller = select.poll()
poller.register(0, select.POLLIN | select.POLLHUP)
while True:
    deadline = time.perf_counter() + spin
    while spin and not poller.poll(0) and time.perf_counter() < deadline:
        pass
    header = os.read(0, 4)
    if not header:
        break
    body = os.read(0, struct.unpack(">I", header)[0])
    os.write(1, header + body)
"""


def pipe_round_trip_us(poll_s: float, calls: int = 3000) -> float:
    """Median round trip of a 200-byte frame to a child echoing it (no Python work to speak of:
    the floor of a serve call over pipes on this machine)."""
    child = subprocess.Popen(
        [sys.executable, "-c", ECHO, str(poll_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    assert child.stdin is not None and child.stdout is not None
    message, samples = struct.pack(">I", 200) + b"x" * 200, []
    for _ in range(calls):
        started = time.perf_counter_ns()
        child.stdin.write(message)
        got = child.stdout.read(204)
        samples.append((time.perf_counter_ns() - started) / 1e3)
        assert len(got) == 204
    child.stdin.close()
    child.wait(timeout=10)
    return statistics.median(samples[calls // 5 :])


class Server:
    def __init__(self, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "warden_algos", "serve", "--log-level", "error", *options],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def ask(self, body: bytes) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        self.proc.stdin.flush()
        (size,) = struct.unpack(">I", self.proc.stdout.read(4))
        answer: dict[str, Any] = orjson.loads(self.proc.stdout.read(size))
        if answer["status"] != "ok":
            raise RuntimeError(answer)
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def detect_body(name: str, times: np.ndarray, values: np.ndarray, **detect: Any) -> bytes:
    payload = {"timestamps": times, "values": values, **detect}
    request = {"interface": "detect", "algorithm": name, "include_band": False, "detect": payload}
    return orjson.dumps(request, option=orjson.OPT_SERIALIZE_NUMPY)


def timed(server: Server, bodies: list[bytes]) -> tuple[list[float], list[dict[str, Any]]]:
    samples, answers = [], []
    for body in bodies:
        started = time.perf_counter_ns()
        answers.append(server.ask(body))
        samples.append((time.perf_counter_ns() - started) / 1e3)
    return samples, answers


def streaming(
    server: Server,
    name: str,
    times: np.ndarray,
    values: np.ndarray,
    calls: int,
    by_ref: bool,
    sha256_only: bool = False,
) -> tuple[list[float], int]:
    """Fit on all but the last ``calls`` points, then stream them one call each; each request
    is encoded before its timer starts (the host's cost), from the previous answer."""
    fit = {"interface": "fit", "algorithm": name, "fit": {"timestamps": times[:-calls],
           "values": values[:-calls]}}  # fmt: skip
    fitted = server.ask(orjson.dumps(fit, option=orjson.OPT_SERIALIZE_NUMPY))["fit"]
    state, sha = fitted["state"], fitted["state_sha256"]
    samples = []
    for i in range(times.shape[0] - calls, times.shape[0]):
        reference = {"state_sha256": sha} if by_ref else {"state": state}
        if sha256_only:
            reference["return_state_sha256_only"] = True
        body = detect_body(name, times[i : i + 1], values[i : i + 1], return_state=True,
                           **reference)  # fmt: skip
        started = time.perf_counter_ns()
        answer = server.ask(body)
        samples.append((time.perf_counter_ns() - started) / 1e3)
        state, sha = answer["detect"].get("state", state), answer["detect"]["state_sha256"]
    return samples, len(base64.b64decode(state))


def fit_rate(name: str, series: int, points: int) -> float:
    """Seconds to fit ``series`` series of ``points`` points each, in process (one core)."""
    algorithm = Registry.discover().load(name)()
    times, values = month(points, seed=1)
    started = time.perf_counter()
    for _ in range(series):
        run_fit(algorithm, times, values)
    return time.perf_counter() - started


def trainable_names() -> list[str]:
    """The trainable built-ins (an installed plugin is measured only when named)."""
    from warden_algos.interfaces.trainable import is_trainable
    from warden_algos.registry import BUILTIN_ALGORITHMS

    registry = Registry.discover()
    return [name for name in sorted(BUILTIN_ALGORITHMS) if is_trainable(registry.load(name))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", action="append", help="default: every trainable built-in")
    parser.add_argument("--calls", type=int, default=300, help="streaming calls per algorithm")
    parser.add_argument("--quick", action="store_true", help="fewer calls and fits")
    parser.add_argument(
        "--merge", action="store_true", help="keep the written rows of the other algorithms"
    )
    args = parser.parse_args()
    names = args.algorithm or trainable_names()
    calls = 30 if args.quick else args.calls
    times, values = month()
    table = Table(
        title="serve-mode latency, 30 days of 1-minute points (43,200), JSON, one process"
    )
    for column in ("algorithm", "stateless ms", "stream inline us", "stream by ref us",
                   "by ref, sha256 only us", "ratio (sha256 only)", "the same, --poll-us 1000",
                   "ratio (polling)", "state bytes 10d / 30d",
                   "fit 1,000 x 10k s"):  # fmt: skip
        table.add_column(column, justify="left" if column == "algorithm" else "right")
    floor = {"blocking": pipe_round_trip_us(0.0), "polling": pipe_round_trip_us(0.001)}
    console.print(
        f"pipe round trip of a 200-byte frame: {floor['blocking']:.0f} us with the child "
        f"blocking, {floor['polling']:.0f} us with it polling"
    )
    results: dict[str, Any] = {"pipe_round_trip_us": floor}
    for name in names:
        server = Server()
        try:
            slow = name == "prophet"
            reps = 3 if slow else (5 if args.quick else 15)
            stateless, _ = timed(server, [detect_body(name, times, values)] * reps)
            streamed = max(5, calls // (20 if slow else 1))
            inline, _ = streaming(server, name, times, values, streamed, False)
            by_ref, size_30 = streaming(server, name, times, values, streamed, True)
            sha_only, _ = streaming(server, name, times, values, streamed, True, True)
            _, size_10 = streaming(server, name, times[: 10 * DAY], values[: 10 * DAY], 5, True)
        finally:
            server.close()
        polling_server = Server("--poll-us", "1000")
        try:
            polled, _ = streaming(polling_server, name, times, values, streamed, True, True)
        finally:
            polling_server.close()
        series = 10 if slow else (100 if args.quick else 1000)
        fit_s = fit_rate(name, series, 10_000) * (1000 / series)
        row = {
            "stateless_ms": statistics.median(stateless) / 1e3,
            "stream_inline_us": statistics.median(inline),
            "stream_by_ref_us": statistics.median(by_ref),
            "stream_by_ref_p90_us": float(np.percentile(by_ref, 90)),
            "ratio_inline": statistics.median(stateless) / statistics.median(inline),
            "ratio_by_ref": statistics.median(stateless) / statistics.median(by_ref),
            "stream_sha256_only_us": statistics.median(sha_only),
            "ratio_sha256_only": statistics.median(stateless) / statistics.median(sha_only),
            "stream_sha256_only_polling_us": statistics.median(polled),
            "ratio_sha256_only_polling": statistics.median(stateless) / statistics.median(polled),
            "state_bytes_10_days": size_10,
            "state_bytes_30_days": size_30,
            "fit_1000_series_of_10k_s": fit_s,
            "fit_series_measured": series,
        }
        results[name] = row
        table.add_row(
            name,
            f"{row['stateless_ms']:.1f}",
            f"{row['stream_inline_us']:.0f}",
            f"{row['stream_by_ref_us']:.0f}",
            f"{row['stream_sha256_only_us']:.0f}",
            f"{row['ratio_sha256_only']:.0f}x",
            f"{row['stream_sha256_only_polling_us']:.0f}",
            f"{row['ratio_sha256_only_polling']:.0f}x",
            f"{size_10:,} / {size_30:,}",
            f"{fit_s:.1f}" + ("" if series == 1000 else f" (from {series})"),
        )
        console.print(table)
    if args.merge and RESULTS.is_file():
        results = {**orjson.loads(RESULTS.read_bytes()), **results}
    RESULTS.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

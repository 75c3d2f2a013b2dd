"""Dispatch latency: one-shot ``run`` against its floors, serve-mode round trips, and where the
time of a large request goes.

    python benchmarks/dispatch.py            # full run (a few minutes on 2 cores)
    python benchmarks/dispatch.py --quick    # smoke run

Why these floors. A one-shot run cannot be faster than starting the interpreter (``python -c
pass``) plus importing the libraries its path cannot avoid. The issue names ``import numpy, orjson,
pydantic``; but ``import pydantic`` is lazy and loads almost nothing, while the path builds pydantic
models (every algorithm's ``Params`` is one), which imports pydantic's schema machinery and its
plugin loader. So a second floor builds one model with a bounded field: that is what "importing
pydantic" costs when pydantic is used. Ratios are printed against both.

Launches of the different commands are interleaved (round-robin), so machine noise hits all of them
alike. Serve-mode requests are encoded once, outside the timed loop: encoding is the host's cost.
Figures go to the terminal as tables and to ``benchmarks/results/dispatch.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces import run_detect
from warden_algos.wire import DetectPayload, Request, Response, get_codec

RESULTS = Path(__file__).resolve().parent / "results" / "dispatch.json"
PYTHON = sys.executable
SCRIPT = str(Path(PYTHON).parent / "warden-algos")
MODEL_FLOOR = (
    "import numpy, orjson\n"
    "from pydantic import BaseModel, Field\n"
    "class P(BaseModel):\n"
    "    window: int = Field(60, ge=2)\n"
)
ONE_SHOT = {
    "python -c pass": [PYTHON, "-c", "pass"],
    "floor: import numpy, orjson, pydantic": [PYTHON, "-c", "import numpy, orjson, pydantic"],
    "floor: numpy, orjson + a pydantic model": [PYTHON, "-c", MODEL_FLOOR],
    "warden-algos run (console script)": [SCRIPT, "run"],
    "python -m warden_algos run": [PYTHON, "-m", "warden_algos", "run"],
}
FLOORS = ("floor: import numpy, orjson, pydantic", "floor: numpy, orjson + a pydantic model")
console = Console(width=120)
codec = get_codec("json")


def series(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = 100 + rng.normal(0, 2, n)
    values[rng.choice(n, max(1, n // 500), replace=False)] += 40
    return 1_700_000_000 + 60 * np.arange(n, dtype=np.int64), values


def request_bytes(n: int, *, packed: bool, band: bool) -> bytes:
    timestamps, values = series(n)
    return codec.encode_request(
        Request(
            interface="detect",
            algorithm="ksigma",
            payload=DetectPayload(["host=bench"], timestamps, values),
            params={"window": 60, "k": 4.0},
            request_id=f"bench-{n}",
            include_band=band,
            packed_arrays=packed,
        )
    )


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def one_shot(launches: int) -> dict[str, list[float]]:
    body = request_bytes(1000, packed=False, band=True)
    samples: dict[str, list[float]] = {name: [] for name in ONE_SHOT}
    for command in ONE_SHOT.values():  # warm the page cache once
        subprocess.run(command, input=body, capture_output=True, check=True)
    for _ in range(launches):
        for name, command in ONE_SHOT.items():
            started = time.perf_counter_ns()
            done = subprocess.run(command, input=body, capture_output=True, check=True)
            samples[name].append((time.perf_counter_ns() - started) / 1e6)
            if "run" in command:
                response = orjson.loads(done.stdout)
                assert response["status"] == "ok", response
    return samples


def print_one_shot(samples: dict[str, list[float]]) -> dict[str, Any]:
    launches = len(samples["python -c pass"])
    table = Table(title=f"one-shot latency, ksigma on 1,000 points ({launches} launches each)")
    for column in ("command", "median ms", "p90 ms", "/ issue floor", "/ model floor"):
        table.add_column(column, justify="right" if column != "command" else "left")
    floors = {name: statistics.median(samples[name]) for name in FLOORS}
    out: dict[str, Any] = {}
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = percentile(values, 90)
        ratios = [median / floors[floor] for floor in FLOORS]
        table.add_row(name, f"{median:.1f}", f"{p90:.1f}", *(f"{r:.2f}x" for r in ratios))
        out[name] = {
            "median_ms": median,
            "p90_ms": p90,
            "ratio_issue_floor": ratios[0],
            "ratio_model_floor": ratios[1],
        }
    console.print(table)
    return out


class Server:
    """One long-lived ``serve`` process; exact reads of each response frame."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [SCRIPT, "serve", "--log-level", "warning"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def round_trip(self, frame: bytes) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(frame)
        self.proc.stdin.flush()
        (size,) = struct.unpack(">I", self.proc.stdout.read(4))
        return self.proc.stdout.read(size)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def serve_round_trips(server: Server, body: bytes, count: int) -> list[float]:
    frame = struct.pack(">I", len(body)) + body
    for _ in range(3):
        assert orjson.loads(server.round_trip(frame))["status"] == "ok"
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        server.round_trip(frame)
        samples.append((time.perf_counter_ns() - started) / 1e3)  # µs
    return samples


def serve_mode(small: int, large: int) -> dict[str, Any]:
    cases = [
        (1_000, "lists, band", False, True, small),
        (1_000, "lists, no band", False, False, small),
        (1_000, "packed, band", True, True, small),
        (1_000_000, "lists, band", False, True, large),
        (1_000_000, "lists, no band", False, False, large),
        (1_000_000, "packed, band", True, True, large),
        (1_000_000, "packed, no band", True, False, large),
    ]
    server = Server()
    table = Table(title="serve mode: round trip per request (client write -> full response read)")
    for column in ("points", "arrays", "requests", "median", "p90", "target", "median / target"):
        table.add_column(column, justify="left" if column == "arrays" else "right")
    out: dict[str, Any] = {}
    try:
        for n, label, packed, band, count in cases:
            samples = serve_round_trips(server, request_bytes(n, packed=packed, band=band), count)
            median, p90 = statistics.median(samples), percentile(samples, 90)
            target_us = 200.0 if n == 1_000 else 50_000.0
            unit, scale = ("µs", 1.0) if n == 1_000 else ("ms", 1e-3)
            table.add_row(
                f"{n:,}",
                label,
                str(count),
                f"{median * scale:.1f} {unit}",
                f"{p90 * scale:.1f} {unit}",
                f"{target_us * scale:g} {unit}",
                f"{median / target_us:.2f}x",
            )
            out[f"{n}/{label}"] = {
                "median_us": median,
                "p90_us": p90,
                "requests": count,
                "target_us": target_us,
            }
    finally:
        server.close()
    console.print(table)
    return out


def timed(function: Callable[[], object], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        function()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return statistics.median(samples)


def phases(repeats: int) -> dict[str, Any]:
    """Server-side cost of one 1,000,000-point request, phase by phase, in this process."""
    table = Table(
        title=f"where a 1,000,000-point ksigma request goes (in-process, median of {repeats})"
    )
    for column in ("arrays", "decode ms", "ksigma + checks ms", "encode ms", "total ms"):
        table.add_column(column, justify="left" if column == "arrays" else "right")
    algorithm = KSigma(window=60, k=4.0)
    out: dict[str, Any] = {}
    for label, packed, band in [
        ("lists, band", False, True),
        ("packed, band", True, True),
        ("packed, no band", True, False),
    ]:
        body = request_bytes(1_000_000, packed=packed, band=band)
        request = codec.decode_request(body)
        payload = request.payload
        assert isinstance(payload, DetectPayload)
        result = run_detect(algorithm, payload.timestamps, payload.values)
        if not band:
            result = result.without_band()
        response = Response(request_id="x", result=result, packed_arrays=packed)
        decode = timed(lambda body=body: codec.decode_request(body), repeats)
        detect = timed(lambda p=payload: run_detect(algorithm, p.timestamps, p.values), repeats)
        encode = timed(lambda r=response: codec.encode_response(r), repeats)
        total = decode + detect + encode
        table.add_row(label, f"{decode:.1f}", f"{detect:.1f}", f"{encode:.1f}", f"{total:.1f}")
        out[label] = {"decode_ms": decode, "detect_ms": detect, "encode_ms": encode}
    console.print(table)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer launches and requests")
    parser.add_argument("--launches", type=int, default=None, help="one-shot launches (>= 20)")
    args = parser.parse_args()
    launches = args.launches or (5 if args.quick else 30)
    small, large, repeats = (200, 3, 3) if args.quick else (2000, 10, 5)
    console.print(
        f"python {platform.python_version()} at {PYTHON}; {platform.machine()}, "
        f"{__import__('os').cpu_count()} cores"
    )
    results = {
        "python": platform.python_version(),
        "one_shot": print_one_shot(one_shot(launches)),
        "serve": serve_mode(small, large),
        "phases_1m": phases(repeats),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    console.print(f"figures written to {RESULTS}")


if __name__ == "__main__":
    main()

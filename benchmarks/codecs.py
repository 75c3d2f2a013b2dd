"""Codec cost side by side: JSON, Thrift binary and Thrift compact, lists and packed arrays.

    python benchmarks/codecs.py            # 1,000 / 100,000 / 1,000,000 points (about a minute)
    python benchmarks/codecs.py --quick    # smoke run

For each size and wire form it times, in this process, what the executable does with a request
(decode the request, encode the response) and what a host does (encode the request, decode the
response). The response is a detect result with its band (expected/lower/upper for every point)
and 1% of the points flagged, as ksigma returns by default. Each figure is the median of repeated
runs; ratios are against the JSON list form, the baseline every other form has to beat. Figures go
to the terminal and to ``benchmarks/results/codecs.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.interfaces import DetectResult
from warden_algos.wire import CODECS, DetectPayload, Request, Response, get_codec

RESULTS = Path(__file__).resolve().parent / "results" / "codecs.json"
console = Console(width=140)


def messages(n: int, packed: bool) -> tuple[Request, Response]:
    rng = np.random.default_rng(n)
    times = 1_700_000_000 + 60 * np.arange(n, dtype=np.int64)
    values = 100 + rng.normal(0, 1, n)
    flagged = np.sort(rng.choice(n, max(1, n // 100), replace=False))
    request = Request(
        interface="detect",
        algorithm="ksigma",
        payload=DetectPayload(["host=bench"], times, values),
        params={"window": 60},
        request_id="bench",
        packed_arrays=packed,
    )
    result = DetectResult(
        times[flagged], rng.uniform(3, 9, flagged.size), values - 0.1, values - 3, values + 3
    )
    return request, Response(request_id="bench", result=result, packed_arrays=packed)


def median_seconds(action: Callable[[], Any], budget_s: float, max_runs: int) -> float:
    """Median of repeated runs, as many as fit the time budget (at least 3)."""
    action()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < 3 or (spent < budget_s and len(samples) < max_runs):
        start = time.perf_counter()
        action()
        elapsed = time.perf_counter() - start
        samples.append(elapsed)
        spent += elapsed
    return statistics.median(samples)


def measure(n: int, format_name: str, packed: bool, budget_s: float) -> dict[str, Any]:
    codec = get_codec(format_name)
    request, response = messages(n, packed)
    request_bytes = codec.encode_request(request)
    response_bytes = codec.encode_response(response)
    runs = 2000 if n <= 1000 else 50
    timings = {
        "decode request": median_seconds(
            lambda: codec.decode_request(request_bytes), budget_s, runs
        ),
        "encode response": median_seconds(lambda: codec.encode_response(response), budget_s, runs),
        "encode request": median_seconds(lambda: codec.encode_request(request), budget_s, runs),
        "decode response": median_seconds(
            lambda: codec.decode_response(response_bytes), budget_s, runs
        ),
    }
    executable = timings["decode request"] + timings["encode response"]
    return {
        "points": n,
        "format": format_name,
        "arrays": "packed" if packed else "lists",
        "ms": {k: v * 1e3 for k, v in timings.items()},
        "executable_ms": executable * 1e3,
        "total_ms": sum(timings.values()) * 1e3,
        "request_bytes": len(request_bytes),
        "response_bytes": len(response_bytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 100,000 points, short runs")
    options = parser.parse_args()
    sizes = [1_000, 100_000] if options.quick else [1_000, 100_000, 1_000_000]
    budget = 0.2 if options.quick else 1.5
    rows = [
        measure(n, format_name, packed, budget)
        for n in sizes
        for format_name in CODECS
        for packed in (False, True)
    ]
    table = Table(
        title="Codec time per message (median ms); 'executable' = decode request + encode response"
    )
    for column in (
        "points",
        "format",
        "arrays",
        "decode req",
        "encode resp",
        "executable",
        "vs json lists",
        "encode req",
        "decode resp",
        "request MB",
        "response MB",
    ):
        table.add_column(column, justify="left" if column in ("format", "arrays") else "right")
    for n in sizes:
        group = [r for r in rows if r["points"] == n]
        baseline = next(
            r["executable_ms"] for r in group if r["format"] == "json" and r["arrays"] == "lists"
        )
        for row in group:
            ms = row["ms"]
            row["executable_vs_json_lists"] = row["executable_ms"] / baseline
            table.add_row(
                f"{n:,}",
                row["format"],
                row["arrays"],
                f"{ms['decode request']:.3f}",
                f"{ms['encode response']:.3f}",
                f"{row['executable_ms']:.3f}",
                f"{row['executable_vs_json_lists']:.2f}x",
                f"{ms['encode request']:.3f}",
                f"{ms['decode response']:.3f}",
                f"{row['request_bytes'] / 1e6:.3f}",
                f"{row['response_bytes'] / 1e6:.3f}",
            )
        table.add_section()
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_bytes(
        orjson.dumps(
            {
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "quick": options.quick,
                "rows": rows,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()

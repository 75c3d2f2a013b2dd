"""The largest request each built-in accepts under the default budget, and what it costs.

    python benchmarks/request_limits.py [--algorithm NAME ...] [--max-points N]

For every built-in, requests of growing size (1e4, 1e5, 1e6, 4e6 points; RCA: the points spread
over 20 related metrics) go through ``warden-algos run`` (JSON, one process each, measured from a
wrapper that is that process's only parent: peak RSS from ``RUSAGE_CHILDREN``); the table shows
for each size whether it was answered or refused by the budget, the wall time and the peak RSS.
The baseline on the same row is the request's own size in MiB (what the byte limit sees), so the
ratio RSS / request size is the amplification the budget has to bound. Also confirms the cost of
a refusal: the review's amplifying requests (adtributor 1M anomaly times x 100 seasons,
spectral_residual window=100,000) are refused in milliseconds. Results go to
benchmarks/results/request_limits.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.registry import BUILTIN_ALGORITHMS, Registry

ROOT = Path(__file__).resolve().parents[1]
SIZES = (10_000, 100_000, 1_000_000, 4_000_000)

WRAPPER = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "warden_algos", "run", "--log-level", "error"],
                      stdin=sys.stdin, stdout=subprocess.PIPE)
sys.stdout.buffer.write(done.stdout)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
"""


def detect_body(name: str, n: int, params: dict[str, Any] | None = None) -> bytes:
    rng = np.random.default_rng(0)
    values = 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 1440) + rng.normal(0, 1, n)
    values[n // 2] += 100
    times = 1_700_000_000 + 60 * np.arange(n, dtype=np.int64)
    return orjson.dumps(
        {
            "interface": "detect",
            "algorithm": name,
            "params": params or {},
            "detect": {"timestamps": times, "values": values},
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def rca_body(
    name: str, n: int, params: dict[str, Any] | None = None, anomalies: Any = None
) -> bytes:
    per = max(n // 20, 2)
    rng = np.random.default_rng(1)
    times = 1_700_000_000 + 60 * np.arange(per, dtype=np.int64)
    related = [
        {
            "dimensions": {"dc": f"d{i % 4}", "host": f"h{i}"},
            "times": times,
            "values": 5 + rng.normal(0, 1, per),
        }
        for i in range(20)
    ]
    return orjson.dumps(
        {
            "interface": "rca",
            "algorithm": name,
            "params": params or {},
            "rca": {
                "metric_of_interest": {
                    "dimensions": {"m": "x"},
                    "times": times,
                    "values": 10 + rng.normal(0, 1, per),
                },
                "related_metrics": related,
                "k": 3,
                "anomalies": times[per // 2 : per // 2 + 1] if anomalies is None else anomalies,
            },
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def measure(body: bytes) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER], input=body, capture_output=True, timeout=1800, check=False
    )
    seconds = time.perf_counter() - started
    answer = orjson.loads(done.stdout)
    code = "ok" if answer.get("status") == "ok" else answer["error"]["code"]
    return {
        "code": code,
        "seconds": round(seconds, 2),
        "peak_rss_mib": int(done.stderr.decode().strip().splitlines()[-1]) // 1024,
        "request_mib": round(len(body) / (1 << 20), 1),
        "message": "" if code == "ok" else answer["error"]["message"][:90],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", action="append")
    parser.add_argument("--max-points", type=int, default=SIZES[-1])
    args = parser.parse_args()
    registry = Registry.discover()
    names = args.algorithm or sorted(BUILTIN_ALGORITHMS)
    table = Table(title="largest accepted request per built-in (default budget, JSON one-shot)")
    for column in (
        "algorithm",
        "points",
        "request MiB",
        "answer",
        "seconds",
        "peak RSS MiB",
        "RSS / request",
    ):
        table.add_column(column, justify="left" if column in ("algorithm", "answer") else "right")
    rows = []
    for name in names:
        interface = registry.load(name).interface
        for n in [s for s in SIZES if s <= args.max_points]:
            body = detect_body(name, n) if interface == "detect" else rca_body(name, n)
            row = {"algorithm": name, "points": n, **measure(body)}
            rows.append(row)
            table.add_row(
                name,
                f"{n:,}",
                f"{row['request_mib']}",
                row["code"],
                f"{row['seconds']}",
                f"{row['peak_rss_mib']:,}",
                f"{row['peak_rss_mib'] / max(row['request_mib'], 0.1):.0f}x",
            )
            if row["code"] != "ok":
                break
    amplifying = {
        "adtributor 1M anomalies x 100 seasons": rca_body(
            "adtributor",
            200,
            {"seasons": 100, "tolerance_s": 86_400},
            np.arange(1_600_000_000, 1_601_000_000, dtype=np.int64),
        ),
        "spectral_residual window=100,000 on 100,000 points": detect_body(
            "spectral_residual", 100_000, {"window": 100_000}
        ),
    }
    for label, body in amplifying.items():
        row = {"algorithm": label, "points": None, **measure(body)}
        rows.append(row)
        table.add_row(
            label,
            "-",
            f"{row['request_mib']}",
            row["code"],
            f"{row['seconds']}",
            f"{row['peak_rss_mib']:,}",
            "-",
        )
    Console(width=140).print(table)
    out = ROOT / "benchmarks" / "results" / "request_limits.json"
    out.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()

"""Regenerate the sample requests in this folder (deterministic: fixed seeds).

    python examples/requests/generate.py

Each file is a complete request a host could send to ``warden-algos run``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

HERE = Path(__file__).resolve().parent
START = 1_700_000_000  # 2023-11-14T22:13:20Z
STEP = 300  # five-minute points


def _write(name: str, request: dict[str, object]) -> None:
    (HERE / name).write_bytes(
        orjson.dumps(request, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
    )


def ksigma() -> None:
    rng = np.random.default_rng(7)
    n = 288  # one day
    values = np.round(100 + rng.normal(0, 2, n), 3)
    values[200] += 30  # a spike
    values[150:153] = np.nan  # a gap: missing points are null
    _write(
        "ksigma.json",
        {
            "interface": "detect",
            "algorithm": "ksigma",
            "request_id": "example-ksigma-1",
            "params": {"window": 48, "k": 4.0},
            "detect": {
                "dimensions": ["service=checkout", "host=web-1"],
                "timestamps": START + STEP * np.arange(n),
                "values": [None if np.isnan(v) else float(v) for v in values],
            },
        },
    )


def correlation() -> None:
    rng = np.random.default_rng(11)
    n = 120
    times = START + STEP * np.arange(n)
    incident = np.zeros(n)
    incident[80:90] = 1.0
    causes = {
        "db": 20 + rng.normal(0, 1, n) + 40 * incident,
        "cache": 5 + rng.normal(0, 1, n) + 3 * incident,
        "queue": 50 + rng.normal(0, 1, n),
    }
    latency = 200 + rng.normal(0, 3, n) + 2.5 * (causes["db"] - 20) + 0.5 * causes["cache"]
    related = [
        {"dimensions": {"dependency": name}, "times": times, "values": np.round(v, 3)}
        for name, v in causes.items()
    ]
    _write(
        "correlation.json",
        {
            "interface": "rca",
            "algorithm": "correlation",
            "request_id": "example-correlation-1",
            "params": {"window": 12},
            "rca": {
                "metric_of_interest": {
                    "dimensions": {"service": "checkout", "metric": "latency_ms"},
                    "times": times,
                    "values": np.round(latency, 3),
                },
                "related_metrics": related,
                "k": 2,
                "anomalies": times[[82, 85]],
            },
        },
    )


if __name__ == "__main__":
    ksigma()
    correlation()

"""What explanations cost: off (the default) against on, and the hot path against its old self.

    python benchmarks/explanations.py            # a minute or two on 2 cores
    python benchmarks/explanations.py --quick    # smoke run

Three measurements, each against a baseline timed in the same process, interleaved round-robin so
machine noise hits both alike:

1. ``from_flags`` as it is now (runs found by ``interfaces.runs.flag_runs``, explanations off)
   against the code it replaced (``np.fmax.reduceat`` over the runs, copied here): the price the
   hot path pays for explanations being possible at all.
2. ``run_detect`` per built-in detector with ``explain=False`` (baseline) and ``explain=True``.
3. A serve-mode JSON round trip (decode, detect, encode) with and without
   ``include_explanations``, on ksigma and on ensemble.

Figures go to the terminal and to ``benchmarks/results/explanations.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.dispatcher import Dispatcher
from warden_algos.interfaces import DetectResult, run_detect
from warden_algos.registry import BUILTIN_ALGORITHMS, Registry, is_detect
from warden_algos.wire import DetectPayload, Request, get_codec

RESULTS = Path(__file__).resolve().parent / "results" / "explanations.json"
console = Console(width=120)
T0 = 1_700_000_000


def series(n: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Two weeks of 10-minute points (at n = 2016) with a daily cycle and a few anomalies."""
    rng = np.random.default_rng(3)
    times = T0 + 600 * np.arange(n, dtype=np.int64)
    values = 100 + 10 * np.sin(2 * np.pi * times / 86_400) + rng.normal(0, 0.5, n)
    for at in range(n // 8, n, n // 6):
        values[at : at + 3] += 40
    return times, values


def old_from_flags(
    timestamps: npt.NDArray[np.int64],
    is_anomaly: npt.NDArray[np.bool_],
    point_scores: npt.NDArray[np.float64],
) -> DetectResult:
    """``DetectResult.from_flags`` before explanations (commit 5581b9c), the baseline."""
    flagged = np.flatnonzero(is_anomaly)
    if flagged.size == 0:
        starts = flagged
        scores = np.empty(0, dtype=np.float64)
    else:
        first_of_run = np.empty(flagged.size, dtype=bool)
        first_of_run[0] = True
        np.not_equal(flagged[1:], flagged[:-1] + 1, out=first_of_run[1:])
        run_index = np.flatnonzero(first_of_run)
        starts = flagged[run_index]
        scores = np.fmax.reduceat(np.asarray(point_scores, dtype=np.float64)[flagged], run_index)
    return DetectResult(
        timestamps=np.ascontiguousarray(timestamps[starts], dtype=np.int64),
        scores=np.ascontiguousarray(scores, dtype=np.float64),
    )


def interleaved(tasks: dict[str, Callable[[], Any]], rounds: int, inner: int) -> dict[str, float]:
    """Median seconds per call of each task, the tasks taking turns."""
    samples: dict[str, list[float]] = {name: [] for name in tasks}
    for task in tasks.values():
        task()  # warm: imports, pydantic builds, caches
    for _ in range(rounds):
        for name, task in tasks.items():
            started = time.perf_counter()
            for _ in range(inner):
                task()
            samples[name].append((time.perf_counter() - started) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_from_flags(rounds: int) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    for n, flagged_share in ((2_016, 0.01), (100_000, 0.01), (100_000, 0.2)):
        times = T0 + 60 * np.arange(n, dtype=np.int64)
        flags = rng.random(n) < flagged_share
        scores = rng.random(n)
        new, old = (
            DetectResult.from_flags(times, flags, scores),
            old_from_flags(times, flags, scores),
        )
        assert new.timestamps.tolist() == old.timestamps.tolist()
        assert new.scores.tolist() == old.scores.tolist()
        got = interleaved(
            {
                "old": partial(old_from_flags, times, flags, scores),
                "new": partial(DetectResult.from_flags, times, flags, scores),
            },
            rounds,
            max(1, 200_000 // n),
        )
        rows.append(
            {
                "points": n,
                "flagged": int(flags.sum()),
                "old_us": got["old"] * 1e6,
                "new_us": got["new"] * 1e6,
                "ratio": got["new"] / got["old"],
            }
        )
    return rows


def bench_detectors(rounds: int, n: int) -> list[dict[str, Any]]:
    registry = Registry.discover()
    times, values = series(n)
    rows = []
    for name in BUILTIN_ALGORITHMS:
        cls = registry.load(name)
        if name == "prophet" or not is_detect(cls):
            continue
        detector: Any = cls(cls.validate_params({}))
        got = interleaved(
            {
                "off": partial(run_detect, detector, times, values),
                "on": partial(run_detect, detector, times, values, explain=True),
            },
            rounds,
            1,
        )
        found = run_detect(detector, times, values).timestamps.size
        rows.append(
            {
                "algorithm": name,
                "detections": found,
                "off_ms": got["off"] * 1e3,
                "on_ms": got["on"] * 1e3,
                "ratio": got["on"] / got["off"],
            }
        )
    return rows


def bench_serve(rounds: int, n: int) -> list[dict[str, Any]]:
    codec = get_codec("json")
    dispatcher = Dispatcher(codec)
    times, values = series(n)
    rows = []
    for name in ("ksigma", "ensemble"):
        request = Request("detect", name, DetectPayload(["host=a"], times, values), {})
        plain = codec.encode_request(request)
        explained = codec.encode_request(request._replace(include_explanations=True))
        sizes = {
            key: len(dispatcher.handle(raw)[0]) for key, raw in (("off", plain), ("on", explained))
        }
        got = interleaved(
            {
                "off": partial(dispatcher.handle, plain),
                "on": partial(dispatcher.handle, explained),
            },
            rounds,
            5,
        )
        rows.append(
            {
                "algorithm": name,
                "off_ms": got["off"] * 1e3,
                "on_ms": got["on"] * 1e3,
                "ratio": got["on"] / got["off"],
                "answer_bytes_off": sizes["off"],
                "answer_bytes_on": sizes["on"],
            }
        )
    return rows


def table(title: str, rows: list[dict[str, Any]]) -> None:
    out = Table(title=title)
    for key in rows[0]:
        out.add_column(key, justify="right")
    for row in rows:
        out.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke run")
    args = parser.parse_args()
    rounds = 3 if args.quick else 15
    results: dict[str, Any] = {
        "command": "python benchmarks/explanations.py" + (" --quick" if args.quick else ""),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or "?"},
        "from_flags": bench_from_flags(rounds),
        "detectors_2016_points": bench_detectors(max(3, rounds // 3), 2_016),
        "serve_json_2016_points": bench_serve(rounds, 2_016),
    }
    table("from_flags: now vs before explanations (explanations off)", results["from_flags"])
    table("run_detect, 2,016 points: explain off vs on", results["detectors_2016_points"])
    table("serve round trip (JSON), 2,016 points", results["serve_json_2016_points"])
    if not args.quick:
        RESULTS.write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n")
        console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

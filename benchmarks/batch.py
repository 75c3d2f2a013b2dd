"""Batch fit and detect on Dask: series per second with 1 and 2 workers against a plain loop.

    python benchmarks/batch.py [--series 10000] [--algorithms seasonal,mad] [--quick]

Writes ``--series`` synthetic series (default 10,000; a daily shape of their own, noise, a spike
on the last day) as one Parquet file each: 2,000 points at five minutes for the fit, the next
288 for the detect. Then, per algorithm, one ``batch fit`` and one ``batch detect --since`` of
all of them, each timed (wall clock, from the command's start to its exit) and given a fresh
local model store and output folder:

- **loop**: the baseline, in this process: ``batch.task.run_file`` called on every file in turn,
  exactly the work a Dask task does (read, fit or score, push, write results), without Dask;
- **1 worker**, **2 workers**: the real command (``--workers N``, an embedded LocalCluster).

It reports series/s, the ratio 2 workers / 1 worker (target >= 1.7 on 2 cores), Dask's overhead
per series (1 worker's wall time minus the loop's, over the series count; target < 5 ms; this
includes the cluster's start-up of a few seconds), and the peak memory of the driver and of each
worker as the command's summary reports it; the driver's is measured again with a quarter of the
series, so that "independent of the number of series" is a comparison, not a claim. Results go
to ``benchmarks/results/batch.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from warden_algos.batch.job import JobSpec, StoreSpec

RESULTS = Path(__file__).resolve().parent / "results" / "batch.json"
T0 = 1_700_006_400
STEP = 300
DAY = 288
FIT_POINTS = 2000
TARGET_SCALING = 1.7
TARGET_OVERHEAD_MS = 5.0


def write_series(folder: Path, count: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    history, today = folder / "history", folder / "today"
    history.mkdir(parents=True)
    today.mkdir()
    n = FIT_POINTS + DAY
    steps = np.arange(n)
    times = T0 + STEP * steps
    for key in range(count):
        rng = np.random.default_rng(key)
        values = 100 + 20 * np.sin(2 * np.pi * steps / DAY + rng.uniform(0, 6.3))
        values += rng.normal(0, 1.5, n)
        values[FIT_POINTS + int(rng.integers(10, DAY - 10))] += 40
        for target, part in ((history, slice(0, FIT_POINTS)), (today, slice(FIT_POINTS, n))):
            table = pa.table({"timestamp": times[part], "value": values[part]})
            pq.write_table(table, target / f"s{key:05d}.parquet")
    return history, today


def loop(files: list[str], job: JobSpec) -> float:
    from warden_algos.batch.task import run_file

    started = time.perf_counter()
    for name in files:
        outcome = run_file(name, job)
        assert all(one.status == "ok" for one in outcome.series), outcome
    return time.perf_counter() - started


def command(mode: str, inputs: Path, algorithm: str, store: Path, output: Path, workers: int
            ) -> tuple[float, dict[str, Any]]:  # fmt: skip
    argv = [
        sys.executable, "-m", "warden_algos", "batch", mode, str(inputs), "--algorithm",
        algorithm, "--store-dir", str(store), "--output", str(output), "--workers", str(workers),
        "--no-progress", *(["--since"] if mode == "detect" else []),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr.decode()[-3000:]}")
    summary: dict[str, Any] = orjson.loads(done.stdout)
    assert summary["series_failed"] == 0 and summary["series_skipped"] == 0, summary
    return wall, summary


def one_algorithm(algorithm: str, history: Path, today: Path, scratch: Path, count: int
                  ) -> dict[str, Any]:  # fmt: skip
    files = {mode: sorted(str(p) for p in folder.iterdir()) for mode, folder in
             (("fit", history), ("detect", today))}  # fmt: skip
    figures: dict[str, Any] = {}
    for mode in ("fit", "detect"):
        row: dict[str, Any] = {}
        store = scratch / f"{algorithm}-loop-store"
        job = JobSpec(mode, algorithm, {}, StoreSpec(store_dir=str(store)),  # type: ignore[arg-type]
                      str(scratch / f"{algorithm}-loop-out"), since=mode == "detect")  # fmt: skip
        row["loop_s"] = round(loop(files[mode], job), 3)
        for workers in (1, 2):
            wall, summary = command(
                mode, history if mode == "fit" else today, algorithm,
                scratch / f"{algorithm}-{workers}-store", scratch / f"{algorithm}-{workers}-out",
                workers,
            )  # fmt: skip
            row[f"workers_{workers}"] = {
                "wall_s": round(wall, 3),
                "series_per_s": round(count / wall, 1),
                "peak_rss_mib": summary["peak_rss_mib"],
                "anomalies": summary["anomalies"],
            }
        row["loop_series_per_s"] = round(count / row["loop_s"], 1)
        row["scaling_2_over_1"] = round(row["workers_1"]["wall_s"] / row["workers_2"]["wall_s"], 3)
        overhead = (row["workers_1"]["wall_s"] - row["loop_s"]) / count * 1e3
        row["dask_overhead_ms_per_series"] = round(overhead, 3)
        figures[mode] = row
        print(
            f"{algorithm} {mode}: loop {row['loop_series_per_s']} series/s; 1 worker "
            f"{row['workers_1']['series_per_s']}, 2 workers {row['workers_2']['series_per_s']} "
            f"({row['scaling_2_over_1']}x, target >= {TARGET_SCALING}); Dask overhead "
            f"{overhead:.2f} ms/series (target < {TARGET_OVERHEAD_MS}); peak RSS driver "
            f"{row['workers_2']['peak_rss_mib']['driver']} MiB, workers "
            f"{row['workers_2']['peak_rss_mib']['workers']} MiB",
            flush=True,
        )
        # the models the detect scores with: the 2-worker fit's, copied for the loop and 1 worker
        if mode == "fit":
            for name in ("loop", "1"):
                shutil.rmtree(scratch / f"{algorithm}-{name}-store")
                shutil.copytree(
                    scratch / f"{algorithm}-2-store", scratch / f"{algorithm}-{name}-store"
                )
    return figures


def driver_memory(algorithm: str, history: Path, scratch: Path, count: int) -> dict[str, Any]:
    """The driver's peak with a quarter of the files (a folder of links to them) against all."""
    quarter = scratch / "quarter"
    quarter.mkdir()
    for path in sorted(history.iterdir())[: max(1, count // 4)]:
        os.symlink(path, quarter / path.name)
    small = command("fit", quarter, algorithm, scratch / "q-store", scratch / "q-out", 2)[1]
    full = command("fit", history, algorithm, scratch / "f-store", scratch / "f-out", 2)[1]
    return {
        "series": [max(1, count // 4), count],
        "driver_peak_rss_mib": [small["peak_rss_mib"]["driver"], full["peak_rss_mib"]["driver"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--algorithms", default="seasonal,mad")
    parser.add_argument("--quick", action="store_true", help="200 series")
    parser.add_argument("--results", type=Path, default=RESULTS)
    options = parser.parse_args()
    count = 200 if options.quick else options.series
    results: dict[str, Any] = {
        "run": "python benchmarks/batch.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_at_start": os.getloadavg()},
        "series": count,
        "points": {"fit": FIT_POINTS, "detect": DAY},
        "targets": {"scaling_2_over_1_at_least": TARGET_SCALING,
                    "dask_overhead_ms_per_series_below": TARGET_OVERHEAD_MS},
        "algorithms": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="warden-batch-bench-") as folder:
        scratch = Path(folder)
        started = time.perf_counter()
        history, today = write_series(scratch / "data", count)
        print(f"{count} series written in {time.perf_counter() - started:.1f} s", flush=True)
        for algorithm in options.algorithms.split(","):
            results["algorithms"][algorithm] = one_algorithm(
                algorithm, history, today, scratch, count
            )
        results["driver_memory"] = driver_memory(
            options.algorithms.split(",")[0], history, scratch, count
        )
        print(f"driver peak RSS: {results['driver_memory']}")
    options.results.parent.mkdir(exist_ok=True)
    options.results.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"written to {options.results}")


if __name__ == "__main__":
    main()

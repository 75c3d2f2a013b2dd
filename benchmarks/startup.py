"""Start-up of the frozen executable against its floors, in one run.

    python benchmarks/startup.py                          # uses dist/onedir and dist/onefile
    python benchmarks/startup.py --launches 20 --build    # build both first (and time the builds)

One-shot wall latency (median, p90 over ``--launches`` runs, default 20) of: ``python -c pass``;
the floor for light algorithms ``python -c "import numpy, orjson, pydantic"``; the floor for
prophet (a fresh interpreter that imports prophet and runs the same fit and prediction); the
unfrozen CLI; the onedir and the onefile executables; each for ``version``, ``ksigma`` on 1,000
points and ``prophet`` on 720 hourly points. Then the serve-mode round trip of the onedir binary,
artifact sizes and, with ``--build``, build times. Ratios are against the floors.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
console = Console(width=140)


def ksigma_request() -> bytes:
    rng = np.random.default_rng(0)
    times = (1_700_000_000 + 60 * np.arange(1000)).tolist()
    values = (100 + rng.normal(0, 1, 1000)).round(6).tolist()
    return orjson.dumps(
        {
            "interface": "detect",
            "algorithm": "ksigma",
            "detect": {"timestamps": times, "values": values},
        }
    )


def prophet_request() -> bytes:
    rng = np.random.default_rng(1)
    n = 720
    times = (1_700_000_000 + 3600 * np.arange(n)).tolist()
    values = (50 + 10 * np.sin(2 * np.pi * np.arange(n) / 24) + rng.normal(0, 1, n)).round(6)
    return orjson.dumps(
        {
            "interface": "detect",
            "algorithm": "prophet",
            "detect": {"timestamps": times, "values": values.tolist()},
        }
    )


PROPHET_FLOOR = """
import sys, orjson, numpy as np, pandas as pd
from prophet import Prophet
request = orjson.loads(sys.stdin.buffer.read())
frame = pd.DataFrame({"ds": pd.to_datetime(request["detect"]["timestamps"], unit="s"),
                      "y": request["detect"]["values"]})
model = Prophet(uncertainty_samples=0)
model.fit(frame, seed=0)
model.predict(frame[["ds"]])
"""


def launches(command: Sequence[str], stdin: bytes, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        done = subprocess.run(command, input=stdin, capture_output=True, check=False)
        samples.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{command} failed: {done.stderr.decode()[-1500:]}")
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def serve_round_trip(executable: Path, request: bytes, count: int) -> list[float]:
    process = subprocess.Popen(
        [str(executable), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    samples = []
    try:
        for _ in range(count + 5):
            started = time.perf_counter()
            process.stdin.write(struct.pack(">I", len(request)) + request)
            process.stdin.flush()
            (size,) = struct.unpack(">I", process.stdout.read(4))
            process.stdout.read(size)
            samples.append(time.perf_counter() - started)
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    return samples[5:]  # the first answers pay for imports


def build(mode: str) -> float:
    started = time.perf_counter()
    flag = ["--onefile"] if mode == "onefile" else []
    subprocess.run([PY, "-m", "warden_algos", "build", *flag], check=True, cwd=ROOT)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--build", action="store_true", help="build onedir and onefile first")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    args = parser.parse_args()

    build_times = {mode: build(mode) for mode in ("onedir", "onefile")} if args.build else {}
    onedir = args.dist / "onedir" / "warden-algos" / "warden-algos"
    onefile = args.dist / "onefile" / "warden-algos"
    runners: dict[str, list[str]] = {"unfrozen CLI": [PY, "-m", "warden_algos"]}
    for label, path in (("onedir", onedir), ("onefile", onefile)):
        if path.is_file():
            runners[label] = [str(path)]
    cases = {
        "version": (["version"], b""),
        "ksigma 1k": (["run"], ksigma_request()),
        "prophet 720h": (["run"], prophet_request()),
    }
    floors = {
        "python -c pass": launches([PY, "-c", "pass"], b"", args.launches),
        "import numpy, orjson, pydantic": launches(
            [PY, "-c", "import numpy, orjson, pydantic"], b"", args.launches
        ),
        "prophet fit+predict (plain python)": launches(
            [PY, "-c", PROPHET_FLOOR], cases["prophet 720h"][1], max(5, args.launches // 2)
        ),
    }
    table = Table(
        title=f"one-shot wall latency, ms ({args.launches} launches)", title_justify="left"
    )
    for column in ("what", "median", "p90", "vs floor"):
        table.add_column(column, justify="left" if column == "what" else "right")
    results: dict[str, object] = {}
    for label, samples in floors.items():
        median, p90 = summary(samples)
        results[label] = {"median_ms": median * 1e3, "p90_ms": p90 * 1e3}
        table.add_row(label, f"{median * 1e3:.1f}", f"{p90 * 1e3:.1f}", "floor")
    light_floor = summary(floors["import numpy, orjson, pydantic"])[0]
    prophet_floor = summary(floors["prophet fit+predict (plain python)"])[0]
    for runner, command in runners.items():
        for case, (argv, stdin) in cases.items():
            count = args.launches if "prophet" not in case else max(5, args.launches // 2)
            median, p90 = summary(launches([*command, *argv], stdin, count))
            floor = prophet_floor if "prophet" in case else light_floor
            results[f"{runner} {case}"] = {"median_ms": median * 1e3, "p90_ms": p90 * 1e3}
            table.add_row(
                f"{runner}: {case}",
                f"{median * 1e3:.1f}",
                f"{p90 * 1e3:.1f}",
                f"{median / floor:.2f}x",
            )
    console.print(table)
    if onedir.is_file():
        median, p90 = summary(serve_round_trip(onedir, cases["ksigma 1k"][1], 200))
        console.print(
            f"onedir serve round trip, ksigma 1k: median {median * 1e3:.2f} ms, "
            f"p90 {p90 * 1e3:.2f} ms"
        )
    for label, path in (
        ("onedir tarball", next((args.dist / "onedir").glob("*.tar.gz"), None)),
        ("onefile", onefile if onefile.is_file() else None),
    ):
        if path is not None:
            console.print(f"{label}: {path.stat().st_size / 1e6:.1f} MB ({path.name})")
    for mode, seconds in build_times.items():
        console.print(f"build {mode}: {seconds:.0f} s")
    out = ROOT / "benchmarks" / "results" / "startup.json"
    out.write_bytes(orjson.dumps(results | {"builds_s": build_times}, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

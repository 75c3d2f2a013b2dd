"""Start-up of the frozen executable against its floors, in one run.

    python benchmarks/startup.py                          # uses dist/onedir and dist/onefile
    python benchmarks/startup.py --launches 20 --build    # build both first (and time the builds)

One-shot wall latency (median, p90 over ``--launches`` runs, default 20, every command launched in
turn) of: ``python -c pass``; a PyInstaller program that does nothing (the bootloader's own cost);
the floor for light algorithms ``python -c "import numpy, orjson, pydantic"`` and the same with one
pydantic ``BaseModel`` defined and validated (``import pydantic`` alone loads no model machinery:
every request validates through models, so this is the floor a pydantic contract can reach); the
floor for
prophet (a fresh interpreter that imports prophet and runs the same fit and prediction); the
unfrozen CLI; the onedir and the onefile executables; each for ``version``, ``ksigma`` on 1,000
points and ``prophet`` on 720 hourly points. Then the serve-mode round trip of the onedir binary,
where the onedir binary's ksigma start spends its import time (``WARDEN_IMPORTTIME``), artifact
sizes and, with ``--build``, build times. Ratios are against the floors.

    python benchmarks/startup.py --baseline-dist OLD/dist   # also an earlier build, same rounds

With ``--baseline-dist``, the onedir and onefile executables found there (an earlier commit's
``warden-algos build --dist``) are launched in the same rounds, and each case's median is also
given against theirs: what a change of the executable's contents costs at start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.importtrace import ENVIRONMENT_VARIABLE, parse

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


LIGHT_FLOOR = "import numpy, orjson, pydantic"
PROPHET_FLOOR_LABEL = "prophet fit+predict (plain python)"
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


BASEMODEL_FLOOR = """
import numpy, orjson
from pydantic import BaseModel
class Payload(BaseModel):
    values: list[float]
Payload.model_validate({"values": [1.0]})
"""


def launches(command: Sequence[str], stdin: bytes, count: int) -> list[float]:
    return interleaved({"one": (list(command), stdin, count)})["one"]


def interleaved(commands: dict[str, tuple[list[str], bytes, int]]) -> dict[str, list[float]]:
    """Launch every command in turn, round after round, so that a slow spell of the machine
    (2 shared cores) hits every line alike instead of whichever ran during it."""
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for round_ in range(max(count for _, _, count in commands.values())):
        for label, (command, stdin, count) in commands.items():
            if round_ >= count:
                continue
            started = time.perf_counter()
            done = subprocess.run(command, input=stdin, capture_output=True, check=False)
            samples[label].append(time.perf_counter() - started)
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


def frozen_hello(work: Path) -> Path:
    """A PyInstaller onedir program that does nothing: what the bootloader alone costs."""
    script = work / "hello.py"
    script.write_text("pass\n")
    subprocess.run(
        [
            PY,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "ERROR",
            "--onedir",
            "--distpath",
            str(work / "dist"),
            "--workpath",
            str(work / "work"),
            "--specpath",
            str(work),
            str(script),
        ],
        check=True,
        capture_output=True,
    )
    return work / "dist" / "hello" / "hello"


def import_breakdown(executable: Path, request: bytes) -> list[tuple[str, float]]:
    """Where a frozen one-shot start spends its import time: ms per top-level package."""
    done = subprocess.run(
        [str(executable), "run"],
        input=request,
        capture_output=True,
        env={**os.environ, ENVIRONMENT_VARIABLE: "1"},
        check=True,
    )
    per_package: dict[str, float] = {}
    for name, (own, _) in parse(done.stderr.decode()).items():
        top = name.split(".")[0]
        per_package[top] = per_package.get(top, 0.0) + own / 1e3
    return sorted(per_package.items(), key=lambda item: -item[1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--build", action="store_true", help="build onedir and onefile first")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument(
        "--baseline-dist", type=Path, default=None, help="an earlier build's dist/ to compare"
    )
    args = parser.parse_args()

    build_times = {mode: build(mode) for mode in ("onedir", "onefile")} if args.build else {}
    onedir = args.dist / "onedir" / "warden-algos" / "warden-algos"
    onefile = args.dist / "onefile" / "warden-algos"
    runners: dict[str, list[str]] = {"unfrozen CLI": [PY, "-m", "warden_algos"]}
    for label, path in (("onedir", onedir), ("onefile", onefile)):
        if path.is_file():
            runners[label] = [str(path)]
    baseline = args.baseline_dist
    if baseline is not None:
        for label, path in (
            ("baseline onedir", baseline / "onedir" / "warden-algos" / "warden-algos"),
            ("baseline onefile", baseline / "onefile" / "warden-algos"),
        ):
            if not path.is_file():
                raise SystemExit(f"--baseline-dist: no {path}")
            runners[label] = [str(path)]
    cases = {
        "version": (["version"], b""),
        "ksigma 1k": (["run"], ksigma_request()),
        "prophet 720h": (["run"], prophet_request()),
    }
    n, few = args.launches, max(5, args.launches // 2)
    with tempfile.TemporaryDirectory() as work:
        hello = frozen_hello(Path(work))
        plan: dict[str, tuple[list[str], bytes, int]] = {
            "python -c pass": ([PY, "-c", "pass"], b"", n),
            "frozen no-op (PyInstaller onedir)": ([str(hello)], b"", n),
            LIGHT_FLOOR: ([PY, "-c", LIGHT_FLOOR], b"", n),
            "numpy, orjson + one pydantic BaseModel": ([PY, "-c", BASEMODEL_FLOOR], b"", n),
            PROPHET_FLOOR_LABEL: ([PY, "-c", PROPHET_FLOOR], cases["prophet 720h"][1], few),
        }
        for runner, command in runners.items():
            for case, (argv, stdin) in cases.items():
                count = few if "prophet" in case or "onefile" in runner else n
                plan[f"{runner}: {case}"] = ([*command, *argv], stdin, count)
        samples = interleaved(plan)
    medians = {label: summary(values)[0] for label, values in samples.items()}
    table = Table(
        title=f"one-shot wall latency, ms (up to {n} interleaved launches each)",
        title_justify="left",
    )
    for column in ("what", "median", "p90", "vs floor", "vs BaseModel floor"):
        table.add_column(column, justify="left" if column == "what" else "right")
    results: dict[str, object] = {}
    for label, values in samples.items():
        median, p90 = summary(values)
        results[label] = {"median_ms": median * 1e3, "p90_ms": p90 * 1e3, "launches": len(values)}
        if ":" not in label:
            ratio, model_ratio = "floor", ""
        elif "prophet" in label:
            ratio, model_ratio = f"{median / medians[PROPHET_FLOOR_LABEL]:.2f}x", ""
        elif "version" in label:
            ratio, model_ratio = f"{median / medians['python -c pass']:.2f}x (pass)", ""
        else:
            ratio = f"{median / medians[LIGHT_FLOOR]:.2f}x"
            model_ratio = f"{median / medians['numpy, orjson + one pydantic BaseModel']:.2f}x"
        table.add_row(label, f"{median * 1e3:.1f}", f"{p90 * 1e3:.1f}", ratio, model_ratio)
    console.print(table)
    for mode in ("onedir", "onefile") if baseline is not None else ():
        for case in cases:
            now, before = medians[f"{mode}: {case}"], medians[f"baseline {mode}: {case}"]
            results[f"{mode}: {case} vs baseline"] = now / before
            console.print(
                f"{mode} {case}: {now * 1e3:.0f} ms, baseline {before * 1e3:.0f} ms, "
                f"{now / before:.2f}x"
            )
    if onedir.is_file():
        median, p90 = summary(serve_round_trip(onedir, cases["ksigma 1k"][1], 200))
        results["onedir serve round trip ksigma 1k"] = {
            "median_ms": median * 1e3,
            "p90_ms": p90 * 1e3,
        }
        console.print(
            f"onedir serve round trip, ksigma 1k: median {median * 1e3:.2f} ms, "
            f"p90 {p90 * 1e3:.2f} ms"
        )
        breakdown = import_breakdown(onedir, cases["ksigma 1k"][1])
        results["onedir ksigma import ms by package"] = dict(breakdown)
        console.print(
            "onedir ksigma imports (WARDEN_IMPORTTIME, ms by top-level package, traced): "
            + ", ".join(f"{name} {ms:.0f}" for name, ms in breakdown[:10])
            + f"; total {sum(ms for _, ms in breakdown):.0f}"
        )
    artifacts = [
        ("onedir tarball", next((args.dist / "onedir").glob("*.tar.gz"), None)),
        ("onefile", onefile if onefile.is_file() else None),
    ]
    if baseline is not None:
        artifacts += [
            ("baseline onedir tarball", next((baseline / "onedir").glob("*.tar.gz"), None)),
            ("baseline onefile", baseline / "onefile" / "warden-algos"),
        ]
    for label, path in artifacts:
        if path is not None:
            results[f"{label} MB"] = path.stat().st_size / 1e6
            console.print(f"{label}: {path.stat().st_size / 1e6:.1f} MB ({path.name})")
    for mode, seconds in build_times.items():
        console.print(f"build {mode}: {seconds:.0f} s")
    out = ROOT / "benchmarks" / "results" / "startup.json"
    out.write_bytes(orjson.dumps(results | {"builds_s": build_times}, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

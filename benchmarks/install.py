"""What the install extras buy: the core install against everything, measured in one run.

    python benchmarks/install.py [--launches 15]

Builds the wheel from the checkout (timed), installs it into two fresh virtual environments,
the core (``warden-algos``) and everything (``warden-algos[all]``: prophet, evaluate, deploy,
build), timing each ``pip install`` (pip's cache warm or cold, as it is on this machine: say which
in a note), and prints for each: site-packages size, distribution count, and the one-shot latency
of ``warden-algos run`` (ksigma, 1,000 points) and ``warden-algos list``, launched in turn, round
after round, from outside the checkout. Ratios are core / everything: the size ratio is what an
author no longer downloads, the latency ratio shows that the one-shot path never paid for the
extras in the first place (it imports them only where needed). Results also go to
benchmarks/results/install.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
console = Console(width=120, stderr=False)


def ksigma_request() -> bytes:
    rng = np.random.default_rng(0)
    return orjson.dumps(
        {
            "interface": "detect",
            "algorithm": "ksigma",
            "detect": {
                "timestamps": (1_700_000_000 + 60 * np.arange(1000)).tolist(),
                "values": (100 + rng.normal(0, 1, 1000)).round(6).tolist(),
            },
        }
    )


def timed(command: list[str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def install(base: Path, name: str, requirement: str) -> dict[str, object]:
    venv = base / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    seconds = timed([str(venv / "bin" / "pip"), "install", "--quiet", requirement])
    site = next((venv / "lib").glob("python*/site-packages"))
    distributions = len(list(site.glob("*.dist-info")))
    return {
        "venv": venv,
        "install_s": seconds,
        "site_mb": folder_size(site) / 1e6,
        "distributions": distributions,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        wheel_s = timed(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(base),
                str(ROOT),
            ]
        )
        wheel = next(base.glob("warden_algos-*.whl"))
        setups = {
            "core": install(base, "core", str(wheel)),
            "all": install(base, "all", f"{wheel}[all]"),
        }
        request = ksigma_request()
        work = base / "work"
        work.mkdir()
        runs: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.launches):  # interleaved: machine noise hits both alike
            for name, setup in setups.items():
                command = str(Path(str(setup["venv"])) / "bin" / "warden-algos")
                for what, argv, stdin in (
                    ("run ksigma 1k", [command, "run"], request),
                    ("list", [command, "list"], b""),
                ):
                    runs.setdefault((name, what), []).append(
                        timed(argv, input=stdin, cwd=work) * 1000
                    )
        medians = {key: statistics.median(values) for key, values in runs.items()}
    table = Table(title=escape(f"core install vs [all] (wheel built in {wheel_s:.1f} s)"))
    for column in ("what", "core", escape("[all]"), escape("core / [all]")):
        table.add_column(column, justify="right" if column != "what" else "left")
    rows = [
        ("pip install, s", setups["core"]["install_s"], setups["all"]["install_s"]),
        ("site-packages, MB", setups["core"]["site_mb"], setups["all"]["site_mb"]),
        ("distributions", setups["core"]["distributions"], setups["all"]["distributions"]),
        *(
            (f"{what}, median ms", medians[("core", what)], medians[("all", what)])
            for what in ("run ksigma 1k", "list")
        ),
    ]
    results: dict[str, object] = {"wheel_build_s": round(wheel_s, 2), "launches": args.launches}
    for what, core, everything in rows:
        core_f, all_f = float(core), float(everything)  # type: ignore[arg-type]
        table.add_row(what, f"{core_f:,.1f}", f"{all_f:,.1f}", f"{core_f / all_f:.2f}")
        results[what] = {"core": round(core_f, 2), "all": round(all_f, 2)}
    console.print(table)
    out = ROOT / "benchmarks" / "results" / "install.json"
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the conformance kit costs an author's test run, per built-in algorithm, in one process.

    python benchmarks/conformance.py [--algorithm NAME ...]

For each algorithm: the baseline is the irreducible work, every conformance case run twice
directly with ``run_detect``/``run_rca`` (what determinism needs); then the whole kit
(``run_checks``: the same runs under stdout capture, the registration lookup, the fresh-interpreter
import probe, and the typical cases through all three wire formats and the dispatcher). The ratio
kit / baseline is the price of the checks beyond running the algorithm; the import probe's own
time is printed apart because it is a fixed cost (a Python start), not a multiple of the
algorithm. Results also go to benchmarks/results/conformance.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.interfaces import Algorithm, DetectAlgorithm, InvalidInput, run_detect, run_rca
from warden_algos.registry import Registry
from warden_algos.testing import cases_for, run_checks
from warden_algos.testing.cases import DetectCase
from warden_algos.testing.imports import measure_import
from warden_algos.testing.observe import _observed

ROOT = Path(__file__).resolve().parents[1]


def baseline_seconds(algorithm: Algorithm[Any]) -> float:
    started = time.perf_counter()
    for case in cases_for(algorithm.interface):
        for _ in range(2):
            try:
                if isinstance(case, DetectCase):
                    assert isinstance(algorithm, DetectAlgorithm)
                    run_detect(algorithm, case.timestamps, case.values)
                else:
                    run_rca(
                        algorithm,  # type: ignore[arg-type]
                        case.metric_of_interest,
                        case.related_metrics,
                        case.k,
                        case.anomalies,
                    )
            except InvalidInput:
                break
            except Exception:  # the kit reports these; the baseline only times them
                break
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", action="append", help="only these (default: all)")
    args = parser.parse_args()
    registry = Registry.discover()
    names = args.algorithm or registry.names()
    table = Table(title="conformance kit cost per algorithm (seconds, one process)")
    for column in ("algorithm", "baseline", "kit", "kit / baseline", "import probe", "failed"):
        table.add_column(column, justify="right" if column != "algorithm" else "left")
    rows = []
    for name in names:
        cls = registry.load(name)
        algorithm = cls()
        baseline_seconds(algorithm)  # warm: first-call imports (prophet, scipy) are not the kit's
        baseline = baseline_seconds(algorithm)
        probe_started = time.perf_counter()
        measure_import(cls.__module__)  # a fresh interpreter: a fixed cost, shown apart
        probe = time.perf_counter() - probe_started
        _observed.clear()
        started = time.perf_counter()
        results = run_checks(cls)
        kit = time.perf_counter() - started
        failed = [r.check for r in results if not r.passed]
        rows.append({"algorithm": name, "baseline_s": baseline, "kit_s": kit, "failed": failed})
        table.add_row(
            name,
            f"{baseline:.2f}",
            f"{kit:.2f}",
            f"{kit / baseline:.1f}x",
            f"{probe:.2f}",
            ", ".join(failed) or "-",
        )
    Console(width=120).print(table)
    total_kit = sum(r["kit_s"] for r in rows)
    total_base = sum(r["baseline_s"] for r in rows)
    print(
        f"all {len(rows)}: kit {total_kit:.1f} s, baseline {total_base:.1f} s, "
        f"ratio {total_kit / total_base:.1f}x"
    )
    out = ROOT / "benchmarks" / "results" / "conformance.json"
    out.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()

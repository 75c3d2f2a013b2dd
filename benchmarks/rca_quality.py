"""RCA quality on synthetic dimensional metrics with injected root causes.

    python benchmarks/rca_quality.py            # 500 cases per difficulty, seed 0 (about a minute)
    python benchmarks/rca_quality.py --quick    # 60 cases per difficulty, smoke run, no files

Cases come from ``warden_algos.evaluation.rca_synthetic`` (its module docstring says how they are
made): a total, every one-dimension slice of it, the anomaly times and the root-cause slice(s).
Every algorithm runs through the SDK runner with k = 3; a case is a top-1 hit when the first slice
is a root cause, a top-3 hit when one of the first three is (either element of a two-element root
cause counts; "complete@3" needs both). Two difficulties: the default one, and ``HARD`` (noisier,
more and more unequal elements, strongly dependent dimensions, more two-element causes). Next to
the settings, the measured shape of the cases (the total's forecast error, the anomaly's size in
units of it, ...) says how hard they are. The quality bar of issue 5 is adtributor top-1 >= 0.9
and top-3 >= 0.97 on the default difficulty.

Figures go to the terminal and to ``benchmarks/results/rca_synthetic.{md,json}``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from warden_algos.algorithms.adtributor import Adtributor
from warden_algos.algorithms.correlation import Correlation
from warden_algos.algorithms.deviation import Deviation
from warden_algos.evaluation.rca_synthetic import (
    HARD,
    Difficulty,
    RcaScore,
    describe_cases,
    evaluate_rca,
    generate_cases,
)
from warden_algos.interfaces import RCAAlgorithm

RESULTS = Path(__file__).resolve().parent / "results"
console = Console(width=120)

#: (label, class, params): the three algorithms at their defaults, and adtributor without its
#: seasonal forecast, to show what the forecast is worth.
ALGORITHMS: list[tuple[str, type[RCAAlgorithm[Any]], dict[str, Any]]] = [
    ("adtributor", Adtributor, {}),
    ("adtributor (forecast=median)", Adtributor, {"forecast": "median"}),
    ("deviation", Deviation, {}),
    ("correlation", Correlation, {}),
]
DIFFICULTIES = {"default": Difficulty(), "hard": HARD}
BAR = {"top1": 0.9, "top3": 0.97}


def run(n_cases: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "n_cases": n_cases,
        "seed": seed,
        "k": 3,
        "difficulties": {},
    }
    for name, difficulty in DIFFICULTIES.items():
        started = time.perf_counter()
        cases = generate_cases(difficulty, n_cases, seed)
        generated_s = time.perf_counter() - started
        scores: list[tuple[str, RcaScore]] = [
            (label, evaluate_rca(cls, params, cases)) for label, cls, params in ALGORITHMS
        ]
        report["difficulties"][name] = {
            "settings": difficulty.model_dump(mode="json"),
            "measured": describe_cases(cases),
            "generation_s": generated_s,
            "results": [
                {"label": label, **score.model_dump(mode="json"), "ms_per_case": score.ms_per_case}
                for label, score in scores
            ],
        }
    default_adtributor = report["difficulties"]["default"]["results"][0]
    report["quality_bar"] = {
        "required": BAR,
        "met": all(default_adtributor[key] >= value for key, value in BAR.items()),
    }
    return report


def results_table(name: str, entry: dict[str, Any]) -> Table:
    table = Table(title=f"{name} difficulty: {entry['results'][0]['n_cases']} cases")
    for column in ("algorithm", "top-1", "top-3", "complete@3", "ms/case"):
        table.add_column(column, justify="left" if column == "algorithm" else "right")
    for row in entry["results"]:
        table.add_row(
            row["label"],
            f"{row['top1']:.3f}",
            f"{row['top3']:.3f}",
            f"{row['complete_top3']:.3f}",
            f"{row['ms_per_case']:.2f}",
        )
    return table


SETTING_NOTES = {
    "n_dimensions": "dimensions",
    "values_per_dimension": "elements per dimension (range)",
    "n_points": "points per series",
    "interval_s": "interval (s)",
    "share_sigma": "element weight spread (log-normal sigma)",
    "interaction_sigma": "dimension dependence (log-normal sigma per leaf)",
    "seasonality": "daily amplitude",
    "element_noise": "element noise (relative, per point)",
    "element_drift": "element drift (relative, per day)",
    "leaf_noise": "leaf noise (relative, plus 1/level)",
    "drop_range": "drop of the root cause (fraction)",
    "rise_range": "rise of the root cause (fraction)",
    "min_total_effect": "smallest change of the total",
    "p_two_elements": "probability of a two-element root cause",
    "effect_jitter": "per-leaf jitter of the change (log-normal sigma)",
    "anomaly_points": "anomalous points (range)",
}
MEASURED_NOTES = {
    "total_forecast_error": "total's forecast error (sd of log ratio, 3-day seasonal median)",
    "median_effect_in_noise": "median anomaly, in units of that error",
    "min_effect_in_noise": "smallest anomaly, in units of that error",
    "median_root_share": "median share of the total carried by the root cause",
    "small_root_causes": "root causes carrying < 5 % of the total",
    "two_element_cases": "two-element root causes",
    "slices_per_case": "slices per case",
}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# RCA on synthetic dimensional metrics",
        "",
        f"`python benchmarks/rca_quality.py`: {report['n_cases']} cases per difficulty, seed "
        f"{report['seed']}, k = 3, Python {report['python']} on {report['machine']}. Generator: "
        "`warden_algos/evaluation/rca_synthetic.py` (its docstring says how cases are made). "
        "Top-1: the first slice is a root cause; top-3: a root cause is among the first three "
        "(either element of a two-element cause counts); complete@3: every root-cause element "
        "is among the first three. ms/case: the SDK runner (input checks, algorithm, ranking).",
        "",
        f"Quality bar (issue 5, default difficulty): adtributor top-1 >= {BAR['top1']} and "
        f"top-3 >= {BAR['top3']}: **{'met' if report['quality_bar']['met'] else 'NOT met'}**.",
        "",
    ]
    names = list(report["difficulties"])
    for name in names:
        entry = report["difficulties"][name]
        lines += [
            f"## {name} difficulty",
            "",
            "| algorithm | top-1 | top-3 | complete@3 | ms/case |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {row['label']} | {row['top1']:.3f} | {row['top3']:.3f} | "
            f"{row['complete_top3']:.3f} | {row['ms_per_case']:.2f} |"
            for row in entry["results"]
        ]
        lines.append("")
    lines += ["## The difficulties", "", "| setting | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---:|" * len(names))
    for key, note in SETTING_NOTES.items():
        values = [report["difficulties"][name]["settings"][key] for name in names]
        lines.append(f"| {note} | " + " | ".join(_fmt(value) for value in values) + " |")
    for key, note in MEASURED_NOTES.items():
        values = [report["difficulties"][name]["measured"][key] for name in names]
        lines.append(f"| measured: {note} | " + " | ".join(_fmt(value) for value in values) + " |")
    lines.append("")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return " to ".join(_fmt(item) for item in value)
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 cases per difficulty")
    parser.add_argument("--cases", type=int, default=500, help="cases per difficulty")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_cases = 60 if args.quick else args.cases
    report = run(n_cases, args.seed)
    for name, entry in report["difficulties"].items():
        console.print(results_table(name, entry))
        measured = entry["measured"]
        console.print(
            f"  total forecast error {measured['total_forecast_error']:.3f}, anomaly "
            f"{measured['min_effect_in_noise']:.1f}-{measured['median_effect_in_noise']:.1f} "
            f"(min-median) of it, two-element causes {measured['two_element_cases']:.0%}, "
            f"generation {entry['generation_s']:.1f} s"
        )
    met = report["quality_bar"]["met"]
    console.print(f"quality bar (adtributor, default): {'met' if met else 'NOT met'}")
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "rca_synthetic.json").write_bytes(
            orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )
        (RESULTS / "rca_synthetic.md").write_text(markdown(report))
        console.print(f"written to {RESULTS / 'rca_synthetic.md'} and .json")
    if not met:
        sys.exit(1)


if __name__ == "__main__":
    main()

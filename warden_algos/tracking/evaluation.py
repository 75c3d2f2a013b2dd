"""What ``evaluate --mlflow`` logs, so that a run can be found, compared and re-scored later.

One run per command, named after the algorithm:

- params: the algorithm, each of its (effective, best-of-grid) params as ``params.<name>``, the
  corpus (path, fingerprint, size), the grid and cross-validation asked for;
- metrics, overall: NAB under every profile (``nab_standard``, ``nab_low_fp``, ``nab_low_fn``),
  window F1/precision/recall, detections, false positives, false alarms per 1,000 normal points,
  and the range metrics when computed;
  the same per category (``category/<name>/...``) and for each baseline (``baseline/<name>/...``),
  since a score means little without them; with ``--cv``, the cross-validated, in-sample and gap
  NAB per profile (``cv/...``);
- artifacts: ``evaluation.json`` (what ``--json`` writes), ``detections.csv``, ``plots/``; with
  ``--cv``, ``cross_validation.json`` (a table: per profile and fold, the setting chosen on the
  other folds and its train / held-out scores) and the full ``cross_validation_full.json``; with
  ``--grid``, ``grid.json`` (a table of every setting, best first, each param a column) and one
  child run per setting (the best :data:`GRID_CHILD_RUNS`), which the MLflow UI lists under the
  run and compares in its charts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .client import Tracker

if TYPE_CHECKING:
    from warden_algos.evaluation.corpus import Corpus
    from warden_algos.evaluation.crossval import CrossValidated
    from warden_algos.evaluation.ranges import RangeScore, RangeScores
    from warden_algos.evaluation.runner import Evaluation
    from warden_algos.evaluation.scoring import GroupScore

#: A grid's best settings get a child run each; the table artifact has every one.
GRID_CHILD_RUNS = 100


def metric_name(text: str) -> str:
    """MLflow allows letters, digits and ``_-. :/`` in a metric's name."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", text)


def group_metrics(
    prefix: str, group: GroupScore, ranged: RangeScore | None = None
) -> dict[str, float | int | None]:
    """One scope's figures (overall, a category, a baseline), names under ``prefix``."""
    figures: dict[str, float | int | None] = {
        **{f"nab_{name}": value for name, value in group.nab.items()},
        "f1": group.f1,
        "precision": group.precision,
        "recall": group.recall,
        "windows": group.windows,
        "windows_found": group.windows_found,
        "detections": group.detections,
        "false_positives": group.detections - group.true_detections,
        "false_alarms_per_1000": group.false_alarms_per_1000,
    }
    if ranged is not None:
        figures |= {
            "range_precision": ranged.precision,
            "range_recall": ranged.recall,
            "range_f1": ranged.f1,
        }
    return {metric_name(prefix + name): value for name, value in figures.items()}


def _params(evaluation_params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"params.{name}": value for name, value in evaluation_params.items()}


def log_evaluation(
    tracker: Tracker,
    *,
    main: Evaluation,
    baselines: Sequence[Evaluation],
    corpus: Corpus,
    ranges: Sequence[RangeScores] | None,
    document: Mapping[str, Any],
    detections: Path,
    plots: Sequence[Path],
    plots_absent: str | None,
    grid: str | None,
    ranked: Sequence[Evaluation],
    cross: CrossValidated | None,
    cv: str | None,
    cv_seed: int,
    started: float,
    ok: bool,
) -> str:
    """Log one evaluation (see the module) and return its run id."""
    from warden_algos import __version__

    tags = {
        "warden.command": "evaluate",
        "warden.algorithm": main.algorithm,
        "warden.sdk_version": __version__,
        "warden.corpus_fingerprint": corpus.fingerprint,
    }
    if plots_absent is not None:
        tags["warden.plots"] = plots_absent
    run_id = tracker.start(f"evaluate {main.algorithm}", tags, started=started)
    params: dict[str, Any] = {
        "algorithm": main.algorithm,
        **_params(main.params),
        "corpus": str(corpus.root),
        "corpus_fingerprint": corpus.fingerprint,
        "corpus_files": len(corpus.series),
        "corpus_rows": corpus.n_rows,
        "corpus_windows": corpus.n_windows,
        "baselines": ",".join(b.algorithm for b in baselines) or "none",
        "range_metrics": ranges is not None,
    }
    if grid is not None:
        params |= {"grid": grid, "grid_settings": len(ranked)}
    if cv is not None:
        params |= {"cv": cv, "cv_seed": cv_seed}
    metrics = group_metrics("", main.overall, None if ranges is None else ranges[0].overall)
    metrics["wall_s"] = main.wall_s
    for group in main.categories:
        ranged = None if ranges is None else ranges[0].categories[group.name]
        metrics |= group_metrics(f"category/{group.name}/", group, ranged)
    for index, baseline in enumerate(baselines, start=1):
        ranged = None if ranges is None else ranges[index].overall
        metrics |= group_metrics(f"baseline/{baseline.algorithm}/", baseline.overall, ranged)
    if cross is not None:
        metrics |= _cross_metrics(cross)
    tracker.log(run_id, params=params, metrics=metrics)
    tracker.document(run_id, document, "evaluation.json")
    tracker.artifact(run_id, detections)
    for plot in plots:
        tracker.artifact(run_id, plot, "plots")
    if cross is not None:
        tracker.table(run_id, _cross_rows(cross), "cross_validation.json")
        tracker.document(run_id, cross.as_dict(), "cross_validation_full.json")
    if ranked:
        tracker.table(run_id, _grid_rows(ranked), "grid.json")
        for rank, evaluation in enumerate(ranked[:GRID_CHILD_RUNS], start=1):
            _log_setting(tracker, run_id, rank, evaluation, started)
    tracker.finish(run_id, ok=ok)
    return run_id


def _cross_metrics(cross: CrossValidated) -> dict[str, float | int | None]:
    held, inside = cross.nab(), cross.in_sample_nab()
    figures: dict[str, float | int | None] = {}
    for name in held:
        a, b = inside[name], held[name]
        figures[f"cv/nab_{name}"] = b
        figures[f"cv/in_sample_nab_{name}"] = a
        figures[f"cv/gap_nab_{name}"] = None if a is None or b is None else a - b
    return figures


def _cross_rows(cross: CrossValidated) -> list[dict[str, Any]]:
    """Per profile and held-out fold: what was chosen on the other folds, and how it did."""
    return [
        {
            "profile": profile,
            "held_out_fold": choice.fold,
            "files": choice.files,
            "chosen_params": orjson.dumps(choice.params, option=orjson.OPT_SORT_KEYS).decode(),
            "train_nab": choice.train[profile],
            "held_out_nab": choice.held_out[profile],
        }
        for profile, choices in cross.choices.items()
        for choice in choices
    ]


def _grid_rows(ranked: Sequence[Evaluation]) -> list[dict[str, Any]]:
    """Every setting, best first: its rank, each param as a column, its scores."""
    return [
        {
            "rank": rank,
            **{f"params.{name}": value for name, value in evaluation.params.items()},
            **{f"nab_{name}": value for name, value in evaluation.overall.nab.items()},
            "f1": evaluation.overall.f1,
            "detections": evaluation.overall.detections,
            "wall_s": round(evaluation.wall_s, 3),
            "cached": evaluation.cached,
        }
        for rank, evaluation in enumerate(ranked, start=1)
    ]


def _log_setting(
    tracker: Tracker, parent: str, rank: int, evaluation: Evaluation, started: float
) -> None:
    setting = orjson.dumps(evaluation.params, option=orjson.OPT_SORT_KEYS).decode()
    child = tracker.start(
        f"#{rank} {setting}"[:250],
        {"warden.grid_rank": rank, "warden.command": "evaluate --grid"},
        parent=parent,
        started=started,
    )
    metrics = group_metrics("", evaluation.overall)
    metrics["rank"] = rank
    tracker.log(child, params=_params(evaluation.params), metrics=metrics)
    tracker.finish(child, ok=True)

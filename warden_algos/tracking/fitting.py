"""What ``models fit --mlflow`` and ``batch fit --mlflow`` log, and how a stored model and its
run find each other.

The run is made before the first push, so that each push can name it: the model's history
records ``<why> [mlflow run <run id>]`` (``models show`` and ``models history`` print it), and
the run carries the store's URI as the tag ``warden.model_store`` and each model's pointer URI
in its table. The run id goes into ``why``, the free text every pointer and history entry
already holds, rather than into a new field: the store's records refuse unknown fields, so a
new one would make every older reader (a node's ``models sync``) refuse these models.

One run per command, never one per series: ``models fit`` logs the algorithm and its params,
counts and totals, a ``models.json`` table (per model: key, status, sha256, size, points, time
span seen, store generation, state and SDK versions, pointer URI) and, when it fitted exactly
one model, that model's figures and keys as metrics and tags too. ``batch fit`` logs the run's
summary (files, series ok / failed / skipped, wall time) and a ``series.json`` table, one row
per series, however many thousands there are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import Tracker

if TYPE_CHECKING:
    from warden_algos.modelstore.store import ModelStore
    from warden_algos.modelstore.training import SeriesOutcome


def with_run(why: str, run_id: str) -> str:
    """The history's ``why`` of a push made by tracked run ``run_id``."""
    return f"{why} [mlflow run {run_id}]"


def _uri(where: str) -> str:
    """An object store location (s3://... or a path) as a URI."""
    return where if "://" in where else Path(where).absolute().as_uri()


def store_uri(store: ModelStore) -> str:
    return _uri(store.objects.where(store.root)).rstrip("/")


def model_uri(store: ModelStore, algorithm: str, params_id: str, series_key: str) -> str:
    """Where the pointer (the current model) of one series lives."""
    from warden_algos.modelstore.store import SeriesId

    key = store.pointer_key(SeriesId(algorithm, params_id, series_key))
    return _uri(store.objects.where(key))


def _time(seconds: int | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def start_fit(
    tracker: Tracker,
    *,
    command: str,
    algorithm: str,
    params: Mapping[str, Any],
    params_id: str,
    store: str,
    inputs: Sequence[str],
    started: float,
) -> str:
    """The run of one ``models fit`` / ``batch fit`` command, before anything is pushed."""
    from warden_algos import __version__

    run_id = tracker.start(
        f"{command} {algorithm}",
        {
            "warden.command": command,
            "warden.algorithm": algorithm,
            "warden.sdk_version": __version__,
            "warden.model_store": store,
        },
        started=started,
    )
    tracker.log(
        run_id,
        params={
            "algorithm": algorithm,
            **{f"params.{name}": value for name, value in params.items()},
            "params_id": params_id,
            "inputs": " ".join(inputs),
        },
    )
    return run_id


def log_models_fit(
    tracker: Tracker,
    run_id: str,
    *,
    store: ModelStore,
    algorithm: str,
    params_id: str,
    outcomes: Sequence[SeriesOutcome],
    series: int,
    fit_s: float,
    ok: bool,
) -> None:
    """``models fit``'s outcome: one row per model (see the module)."""
    table: list[dict[str, Any]] = []
    for outcome in outcomes:
        info = outcome.info
        fitted = outcome.status != "failed" and info is not None
        table.append(
            {
                "key": outcome.key,
                **({"column": outcome.column} if outcome.column is not None else {}),
                "status": outcome.status,
                "error": outcome.error,
                "sha256": outcome.sha256,
                "size": outcome.size if fitted else None,
                "points": None if info is None else info.seen_points,
                "seen_start": None if info is None else _time(info.seen_start),
                "seen_end": None if info is None else _time(info.seen_end),
                "generation": None if outcome.move is None else outcome.move.generation,
                "state_version": None if info is None else info.state_version,
                "sdk_version": None if info is None else info.sdk_version,
                "model_uri": model_uri(store, algorithm, params_id, outcome.key)
                if fitted
                else None,
            }
        )
    good = [row for row in table if row["status"] != "failed"]
    metrics: dict[str, float | int | None] = {
        "series": series,
        "models": len(table),
        "models_pushed": sum(row["status"] == "pushed" for row in table),
        "models_current": sum(row["status"] == "current" for row in table),
        "models_failed": len(table) - len(good),
        "points": sum(row["points"] or 0 for row in good),
        "state_bytes": sum(row["size"] or 0 for row in good),
        "fit_s": fit_s,
    }
    tags: dict[str, Any] = {}
    if len(outcomes) == 1 and good:  # one model: its own figures, no table needed to find it
        (one,), info = table, outcomes[0].info
        assert info is not None
        metrics |= {"seen_start": info.seen_start, "seen_end": info.seen_end}
        if one["generation"] is not None:
            metrics["generation"] = one["generation"]
        tags = {
            "warden.series_key": one["key"],
            "warden.model_sha256": one["sha256"],
            "warden.model_uri": one["model_uri"],
            "warden.state_version": one["state_version"],
        }
    tracker.log(run_id, metrics=metrics, tags=tags)
    tracker.table(run_id, table, "models.json")
    tracker.finish(run_id, ok=ok)


def log_batch_fit(
    tracker: Tracker,
    run_id: str,
    *,
    summary: Mapping[str, Any],
    outcomes: Sequence[Any],
    ok: bool,
) -> None:
    """``batch fit``'s summary as metrics and every series as a row of ``series.json``."""
    metrics = {
        name: summary[name]
        for name in (
            "files",
            "series_ok",
            "series_failed",
            "series_skipped",
            "wall_s",
            "workers_lost",
        )
    }
    metrics["driver_peak_rss_mib"] = summary["peak_rss_mib"]["driver"]
    rows = [
        {
            "file": outcome.file,
            "together_with": " ".join(outcome.together_with),
            "key": one.key,
            **({"column": one.column} if one.column is not None else {}),
            "status": "skipped" if outcome.skipped and one.status == "ok" else one.status,
            "code": one.code,
            "message": one.message,
            "points": one.points,
            "sha256": one.sha256,
        }
        for outcome in sorted(outcomes, key=lambda item: item.file)
        for one in outcome.series
    ]
    tracker.log(run_id, metrics=metrics)
    tracker.table(run_id, rows, "series.json")
    tracker.finish(run_id, ok=ok)

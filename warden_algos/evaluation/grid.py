"""Grid search: every combination of the listed values, scored on the whole corpus, best first.

The best setting is the one with the highest total standard NAB score over the corpus (ties go to
fewer detections, then to grid order), so one setting serves every file: per-file tuning would
only measure how well the grid memorises the corpus.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .cache import RunCache
from .corpus import Corpus
from .runner import Evaluation, evaluate_algorithm


class GridError(ValueError):
    """The grid is not an object of non-empty lists."""


def expand_grid(base: Mapping[str, Any], grid: Mapping[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(grid, Mapping) or not grid:
        raise GridError('--grid must be a non-empty JSON object of lists, e.g. {"k": [3, 4, 5]}')
    for name, choices in grid.items():
        if not isinstance(choices, list) or not choices:
            raise GridError(f"--grid {name!r} must be a non-empty list, got {choices!r}")
    names = list(grid)
    return [
        {**base, **dict(zip(names, combination, strict=True))}
        for combination in itertools.product(*(grid[name] for name in names))
    ]


def rank_key(evaluation: Evaluation) -> tuple[float, int]:
    standard = evaluation.overall.nab["standard"]
    return (standard if standard is not None else float("-inf"), -evaluation.overall.detections)


# Set in each worker by fork: the corpus is shared copy-on-write, not pickled per task.
_WORKER_STATE: dict[str, Any] = {}


def _evaluate_in_worker(params: dict[str, Any]) -> Evaluation:
    state = _WORKER_STATE
    evaluation = evaluate_algorithm(
        state["algorithm"], params, state["corpus"], cache=state["cache"]
    )
    # Detections travel back; bands are never kept in a grid.
    return evaluation


def search(
    algorithm: str,
    settings: list[dict[str, Any]],
    corpus: Corpus,
    *,
    cache: RunCache | None,
    jobs: int = 1,
    on_done: Callable[[Evaluation], None] | None = None,
) -> list[Evaluation]:
    """Evaluate every setting; returns them in grid order (sort with :func:`rank_key`)."""
    results: list[Evaluation] = []
    if jobs <= 1 or len(settings) <= 1:
        for params in settings:
            evaluation = evaluate_algorithm(algorithm, params, corpus, cache=cache)
            results.append(evaluation)
            if on_done is not None:
                on_done(evaluation)
        return results
    _WORKER_STATE.update(algorithm=algorithm, corpus=corpus, cache=cache)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        for evaluation in pool.map(_evaluate_in_worker, settings):
            results.append(evaluation)
            if on_done is not None:
                on_done(evaluation)
    return results


def shown_search(
    algorithm: str,
    settings: list[dict[str, Any]],
    corpus: Corpus,
    *,
    cache: RunCache | None,
    jobs: int,
    label: str,
    console: Any,
) -> list[Evaluation]:
    """:func:`search` behind a rich progress bar on ``console``; in grid order."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(label, total=len(settings))
        evaluations = search(
            algorithm,
            settings,
            corpus,
            cache=cache,
            jobs=jobs,
            on_done=lambda _: progress.advance(task),
        )
    return evaluations


def grid_row(evaluation: Evaluation) -> dict[str, Any]:
    """One grid setting as the JSON outputs list it."""
    return {
        "params": evaluation.params,
        "nab": evaluation.overall.nab,
        "f1": evaluation.overall.f1,
        "detections": evaluation.overall.detections,
        "wall_s": round(evaluation.wall_s, 3),
        "cached": evaluation.cached,
    }

"""Runs one detector with one setting over a corpus and scores it.

A run is pure: the same algorithm code, parameters and corpus give the same detections, so a run
is cached under a key made of exactly those three (see :mod:`.cache`) and a repeated grid point
costs a file read.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from warden_algos.interfaces import DetectAlgorithm, DetectResult, F64Array, I64Array, run_detect
from warden_algos.interfaces.alerting_params import alerting_of, refuse_alerting

from .cache import RunCache, algorithm_fingerprint
from .corpus import Corpus, LabelledSeries
from .scoring import FileScore, GroupScore, aggregate, score_file


@dataclass(frozen=True, eq=False)
class Band:
    """The detector's band on source rows (NaN on rows left out of detection)."""

    expected: F64Array | None
    lower: F64Array | None
    upper: F64Array | None


@dataclass(frozen=True, eq=False)
class SeriesRun:
    key: str
    rows: I64Array  # source rows of the detections, increasing
    scores: F64Array
    seconds: float
    error: str | None = None
    band: Band | None = None


@dataclass(frozen=True, eq=False)
class Evaluation:
    algorithm: str
    params: dict[str, Any]
    runs: tuple[SeriesRun, ...]
    files: tuple[FileScore, ...]
    categories: tuple[GroupScore, ...]
    overall: GroupScore
    wall_s: float  # detection time, summed over series (the cached value on a cache hit)
    cached: bool = False
    errors: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "params": self.params,
            "wall_s": round(self.wall_s, 3),
            "overall": self.overall.as_dict(),
            "categories": {group.name: group.as_dict() for group in self.categories},
            "files": {
                score.key: aggregate(score.key, [score]).as_dict() | {"seconds": run.seconds}
                for score, run in zip(self.files, self.runs, strict=True)
            },
            "errors": list(self.errors),
        }


def resolve_detector(algorithm: str | type[DetectAlgorithm[Any]]) -> type[DetectAlgorithm[Any]]:
    """A registered name, a baseline's name, or a class."""
    if not isinstance(algorithm, str):
        return algorithm
    from warden_algos.registry import Registry, is_detect

    from .baselines import BASELINES

    registry = Registry.discover()
    if algorithm not in registry.entries and algorithm in BASELINES:
        return BASELINES[algorithm]
    loaded = registry.load(algorithm)
    if not is_detect(loaded):
        raise TypeError(f"{algorithm!r} is an {loaded.interface} algorithm, not a detector")
    return loaded  # type: ignore[return-value]


def _detect_series(
    detector: DetectAlgorithm[Any], series: LabelledSeries, keep_band: bool
) -> SeriesRun:
    kept = series.kept_rows
    timestamps = np.ascontiguousarray(series.timestamps[kept])
    values = np.ascontiguousarray(series.values[kept])
    timestamps.flags.writeable = False
    values.flags.writeable = False
    started = time.perf_counter()
    try:
        if series.matrix is not None:
            result = _detect_matrix(detector, timestamps, series.matrix[kept], series.columns)
            keep_band = False  # a matrix has no one band to plot
        elif alerting_of(detector) is not None:  # the SDK's stage after the detector
            result = run_detect(detector, timestamps, values)
        else:
            result = _plain_detect(detector, timestamps, values)
        positions = np.searchsorted(timestamps, result.timestamps)
        positions = np.clip(positions, 0, max(len(timestamps) - 1, 0))
        if len(timestamps) and not np.array_equal(timestamps[positions], result.timestamps):
            raise ValueError("a detection's timestamp is not a timestamp of the series")
    except Exception as error:  # one failing file must not hide the scores of the others
        message = f"{series.key}: {type(error).__name__}: {error}"
        last = traceback.extract_tb(error.__traceback__)[-1:]
        if last:
            message += f" (at {last[0].filename}:{last[0].lineno})"
        return SeriesRun(
            key=series.key,
            rows=np.empty(0, dtype=np.int64),
            scores=np.empty(0),
            seconds=time.perf_counter() - started,
            error=message,
        )
    seconds = time.perf_counter() - started
    order = np.argsort(positions, kind="stable")
    band = None
    if keep_band:

        def on_rows(array: F64Array | None) -> F64Array | None:
            if array is None:
                return None
            full = np.full(len(series), np.nan)
            full[kept] = array
            return full

        band = Band(on_rows(result.expected), on_rows(result.lower), on_rows(result.upper))
    return SeriesRun(
        key=series.key,
        rows=kept[positions[order]].astype(np.int64),
        scores=np.asarray(result.scores, dtype=np.float64)[order],
        seconds=seconds,
        band=band,
    )


def _plain_detect(
    detector: DetectAlgorithm[Any], timestamps: I64Array, values: F64Array
) -> DetectResult:
    return detector.detect([], timestamps, values)


def _detect_matrix(
    detector: DetectAlgorithm[Any], timestamps: I64Array, matrix: F64Array, columns: tuple[str, ...]
) -> DetectResult:
    """A multivariate file's detections: a multivariate detector scores the matrix; any other
    scores each column alone and its detections are merged (a timestamp found in several
    columns counts once, at its highest score). The merge is the per-column baseline the
    multivariate detectors are measured against."""
    from warden_algos.interfaces.multivariate import MultivariateDetector

    cells = np.ascontiguousarray(matrix)
    cells.flags.writeable = False
    if isinstance(detector, MultivariateDetector):
        refuse_alerting(detector, "a matrix of columns")
        found = detector.detect_matrix([], timestamps, cells, list(columns))
        return DetectResult(found.timestamps, found.scores)
    detect = run_detect if alerting_of(detector) is not None else _plain_detect
    parts = [detect(detector, timestamps, np.ascontiguousarray(column)) for column in cells.T]
    times = np.concatenate([part.timestamps for part in parts])
    scores = np.concatenate([np.asarray(part.scores, dtype=np.float64) for part in parts])
    if times.size == 0:
        return DetectResult(times.astype(np.int64), scores)
    order = np.lexsort((-scores, times))
    first = np.r_[True, times[order][1:] != times[order][:-1]]
    return DetectResult(times[order][first].astype(np.int64), scores[order][first])


def evaluate_algorithm(
    algorithm: str | type[DetectAlgorithm[Any]],
    params: Mapping[str, Any] | None,
    corpus: Corpus,
    *,
    cache: RunCache | None = None,
    keep_bands: bool = False,
    name: str | None = None,
) -> Evaluation:
    """Detect on every series of ``corpus`` with one setting and score the detections.

    ``keep_bands`` (for plots) always runs the detector, since bands are not cached.
    """
    cls = resolve_detector(algorithm)
    detector = cls.from_params(dict(params or {}))
    effective = detector.get_params()
    label = name or (algorithm if isinstance(algorithm, str) else cls.name)
    key = None
    runs: list[SeriesRun] | None = None
    if cache is not None:
        key = cache.key(label, algorithm_fingerprint(cls), effective, corpus.fingerprint)
        if not keep_bands:
            runs = cache.load(key, corpus)
    hit = runs is not None
    if runs is None:
        runs = [_detect_series(detector, series, keep_bands) for series in corpus.series]
        if cache is not None and key is not None and not any(run.error for run in runs):
            cache.store(key, runs)
    return score_runs(label, effective, corpus, runs, cached=hit)


def score_runs(
    label: str,
    params: dict[str, Any],
    corpus: Corpus,
    runs: list[SeriesRun],
    *,
    cached: bool = False,
) -> Evaluation:
    files = [score_file(series, run.rows) for series, run in zip(corpus.series, runs, strict=True)]
    categories = [
        aggregate(
            category,
            [f for f, s in zip(files, corpus.series, strict=True) if s.category == category],
        )
        for category in corpus.categories()
    ]
    return Evaluation(
        algorithm=label,
        params=params,
        runs=tuple(runs),
        files=tuple(files),
        categories=tuple(categories),
        overall=aggregate("overall", files),
        wall_s=sum(run.seconds for run in runs),
        cached=cached,
        errors=tuple(run.error for run in runs if run.error),
    )

"""How an evaluation is shown: a rich table (stderr or a terminal), a JSON document, a CSV of
detections that any other scorer can re-score."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NamedTuple

import orjson
from rich.console import Console
from rich.table import Table

from .corpus import Corpus
from .crossval import CrossValidated
from .runner import Evaluation
from .scoring import PROFILES, GroupScore

if TYPE_CHECKING:
    from .ranges import RangeScore, RangeScores


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _row(
    scope: str, label: str, group: GroupScore, seconds: float | None, ranged: RangeScore | None
) -> list[str]:
    nab = group.nab
    return [
        scope,
        label,
        str(group.windows),
        str(group.detections),
        f"{group.windows_found}/{group.windows}",
        _fmt(group.precision, 2),
        _fmt(group.f1, 2),
        _fmt(group.false_alarms_per_1000, 2),
        *([] if ranged is None else [_fmt(ranged.f1, 2)]),
        *(_fmt(nab[p.name]) for p in PROFILES),
        _fmt(seconds, 2) if seconds is not None else "",
    ]


def evaluation_table(
    main: Evaluation,
    baselines: Sequence[Evaluation] = (),
    ranges: Sequence[RangeScores] | None = None,
) -> Table:
    """One table: per category then overall, the algorithm's row followed by the baselines';
    FA/1k: false alarms per 1,000 points outside the labelled windows. With ``ranges`` (one per
    evaluation, main first), a range F1 column after them."""
    table = Table(
        title=f"{main.algorithm} {main.params}" if main.params else main.algorithm,
        title_justify="left",
    )
    for column in (
        "scope",
        "algorithm",
        "windows",
        "detections",
        "found",
        "precision",
        "F1",
        "FA/1k",
    ):
        table.add_column(column, justify="left" if column in ("scope", "algorithm") else "right")
    if ranges is not None:
        table.add_column("range F1", justify="right")
    for profile in PROFILES:
        table.add_column(f"NAB {profile.name}", justify="right")
    table.add_column("seconds", justify="right")
    scopes = [(group.name, index) for index, group in enumerate(main.categories)]
    for position, (scope, index) in enumerate([*scopes, ("overall", -1)]):
        for run_index, run in enumerate([main, *baselines]):
            group = run.overall if index < 0 else run.categories[index]
            seconds = run.wall_s if index < 0 else None
            ranged = None
            if ranges is not None:
                scores = ranges[run_index]
                ranged = scores.overall if index < 0 else scores.categories[group.name]
            style = "bold" if run_index == 0 and index < 0 else ("dim" if run_index else None)
            table.add_row(
                *_row(scope if run_index == 0 else "", run.algorithm, group, seconds, ranged),
                style=style,
                end_section=run_index == len(baselines) and position < len(scopes),
            )
    return table


def cross_validation_tables(cross: CrossValidated, algorithm: str) -> list[Table]:
    """Per profile: the in-sample score of the grid's best, the cross-validated one and the gap;
    then, per fold, the setting it chose by the standard profile and its scores."""
    seed = f", seed {cross.seed}" if cross.scheme != "categories" else ""
    scores = Table(
        title=f"{algorithm}: cross-validated (--cv {cross.scheme}{seed})",
        title_justify="left",
        caption="cross-validated: each held-out fold scored with the setting chosen on the "
        "other folds; in-sample: chosen and scored on every file",
        caption_justify="left",
    )
    for column in ("profile", "in-sample NAB", "cross-validated NAB", "gap"):
        scores.add_column(column, justify="left" if column == "profile" else "right")
    inside, held = cross.in_sample_nab(), cross.nab()
    for profile in PROFILES:
        a, b = inside[profile.name], held[profile.name]
        gap = None if a is None or b is None else a - b
        scores.add_row(profile.name, _fmt(a), _fmt(b), _fmt(gap))
    folds = Table(title="the setting each fold chose (NAB standard)", title_justify="left")
    for column in ("held-out fold", "files", "chosen on the others", "train", "held out"):
        folds.add_column(
            column, justify="right" if column in ("files", "train", "held out") else "left"
        )
    for choice in cross.choices["standard"]:
        folds.add_row(
            choice.fold,
            str(choice.files),
            orjson.dumps(choice.params).decode(),
            _fmt(choice.train["standard"]),
            _fmt(choice.held_out["standard"]),
        )
    return [scores, folds]


def print_table(table: Table, stream: IO[str]) -> None:
    Console(file=stream, width=160).print(table)


def evaluation_json(
    main: Evaluation,
    baselines: Sequence[Evaluation] = (),
    corpus: Corpus | None = None,
    grid: list[dict[str, Any]] | None = None,
    ranges: Sequence[RangeScores] | None = None,
    ranges_absent: str | None = None,
) -> dict[str, Any]:
    """Everything the table shows and more. With ``ranges`` (one per evaluation, main first)
    each ``overall`` and category gets ``range`` beside ``nab``, and ``range_metrics`` says what
    they are; without, ``range_metrics`` says why they are absent (``ranges_absent``)."""
    document: dict[str, Any] = {
        "algorithm": main.algorithm,
        "params": main.params,
        "result": main.as_dict(),
        "baselines": {b.algorithm: b.as_dict() for b in baselines},
        "profiles": {p.name: {"tp": p.tp, "fp": p.fp, "fn": p.fn} for p in PROFILES},
    }
    if ranges is not None:
        from .ranges import DEFINITION, aeon_version, attach

        attach(document["result"], ranges[0])
        for baseline, scores in zip(baselines, ranges[1:], strict=True):
            attach(document["baselines"][baseline.algorithm], scores)
        document["range_metrics"] = {"computed": True, "aeon": aeon_version(), **DEFINITION}
    elif ranges_absent is not None:
        document["range_metrics"] = {"computed": False, "why": ranges_absent}
    if corpus is not None:
        document["corpus"] = {
            "root": str(corpus.root),
            "fingerprint": corpus.fingerprint,
            "files": len(corpus.series),
            "rows": corpus.n_rows,
            "windows": corpus.n_windows,
        }
    if grid is not None:
        document["grid"] = grid
    return document


class WrittenDetections(NamedTuple):
    rows: int  # every detection, so that another scorer sees exactly what the detector said
    in_probation: int  # of which in a file's probationary period, which NAB does not score


def write_detections(path: Path, corpus: Corpus, evaluation: Evaluation) -> WrittenDetections:
    """``file,timestamp,score`` rows, timestamps as written in the source file."""
    count = in_probation = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "timestamp", "score"])
        for series, run in zip(corpus.series, evaluation.runs, strict=True):
            for row, score in zip(run.rows.tolist(), run.scores.tolist(), strict=True):
                writer.writerow([series.key, series.timestamp_text[row], repr(float(score))])
                count += 1
                in_probation += row < series.probation_rows
    return WrittenDetections(count, in_probation)

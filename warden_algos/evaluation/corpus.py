"""Labelled corpora: the NAB layout (``data/<category>/<file>.csv`` + ``labels/``) or one CSV.

Rows are kept exactly as the files hold them (scoring and the detections CSV speak in source rows
and source timestamp text). Detectors need strictly increasing times, so each series also carries
the subset of rows it is detected on: a row whose time is not later than every row before it (a
repeated stamp, a clock stepping back an hour) is left out of detection, never reordered. A left-out
row can still lie inside a labelled window; it simply cannot be the detection that finds it.

A file with several value columns (``timestamp,<column>,<column>,...[,label]``) is one
multivariate series: ``matrix`` holds its columns (``values`` the first, for plots), and a
multivariate detector scores the matrix (``runner``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from warden_algos.interfaces import F64Array, I64Array

#: NAB's probationary period: the first 15% of rows, at most 750, is not scored.
PROBATION_FRACTION = 0.15
#: NAB sizes windows so that together they cover this fraction of a file.
WINDOW_FRACTION = 0.10


class CorpusError(ValueError):
    """The corpus is missing, malformed or inconsistent with its labels."""


@dataclass(frozen=True, eq=False)
class LabelledSeries:
    """One series with its scoring windows, in source-row coordinates."""

    key: str  # "<category>/<file>.csv", the key of the label files
    timestamp_text: tuple[str, ...]  # as written in the file, for the detections CSV
    timestamps: I64Array  # Unix seconds (UTC), one per source row
    values: F64Array
    windows: tuple[tuple[int, int], ...]  # (first row, last row), inclusive, sorted
    labels: tuple[int, ...] = ()  # rows of the labelled anomaly instants
    kept_rows: I64Array = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    #: A multivariate file: its value columns (rows x columns) and their names; None otherwise.
    matrix: F64Array | None = None
    columns: tuple[str, ...] = ()

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0] if "/" in self.key else "-"

    @property
    def probation_rows(self) -> int:
        return probation_rows(len(self.values))

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, eq=False)
class Corpus:
    root: Path
    series: tuple[LabelledSeries, ...]
    fingerprint: str  # hash of every byte the scores depend on: the cache key's corpus part

    @property
    def n_windows(self) -> int:
        return sum(len(s.windows) for s in self.series)

    @property
    def n_rows(self) -> int:
        return sum(len(s) for s in self.series)

    def categories(self) -> list[str]:
        return sorted({s.category for s in self.series})


def probation_rows(n_rows: int) -> int:
    return min(int(np.floor(PROBATION_FRACTION * n_rows)), int(PROBATION_FRACTION * 5000))


def increasing_rows(timestamps: I64Array) -> I64Array:
    """Rows whose time is later than every earlier row: the detectable subset, in file order."""
    if timestamps.size == 0:
        return np.empty(0, dtype=np.int64)
    previous_max = np.maximum.accumulate(timestamps)
    keep = np.empty(timestamps.size, dtype=bool)
    keep[0] = True
    np.greater(timestamps[1:], previous_max[:-1], out=keep[1:])
    return np.flatnonzero(keep).astype(np.int64)


def parse_timestamps(texts: list[str], where: str) -> I64Array:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` without zone, read as UTC."""
    try:
        stamps = np.array([t.strip().replace(" ", "T", 1) for t in texts], dtype="datetime64[s]")
    except ValueError as error:
        raise CorpusError(f"{where}: unreadable timestamp ({error})") from None
    return stamps.astype(np.int64)


LABEL_COLUMNS = ("label", "is_anomaly", "anomaly")


@dataclass(frozen=True)
class _Csv:
    texts: list[str]
    matrix: F64Array  # rows x value columns
    columns: list[str]
    labels: list[str] | None
    raw: bytes

    @property
    def values(self) -> F64Array:
        first: F64Array = np.ascontiguousarray(self.matrix[:, 0])
        return first

    @property
    def multivariate(self) -> dict[str, object]:
        """The LabelledSeries fields of a multivariate file (none for ``timestamp,value``)."""
        if self.columns == ["value"]:
            return {}
        return {"matrix": self.matrix, "columns": tuple(self.columns)}


def _read_csv(path: Path) -> _Csv:
    raw = path.read_bytes()
    lines = raw.decode("utf-8-sig").splitlines()  # CRLF and LF alike
    if not lines:
        raise CorpusError(f"{path}: empty file")
    names = [h.strip() for h in lines[0].split(",")]
    header = [name.lower() for name in names]
    label_column = None
    for name in LABEL_COLUMNS:
        if name in header:
            label_column = header.index(name)
    value_columns = [i for i in range(1, len(header)) if header[i] not in LABEL_COLUMNS]
    if header[0] != "timestamp" or not value_columns:
        raise CorpusError(
            f"{path}: header must be 'timestamp,value' or 'timestamp,<column>,...' (a label "
            f"column optional), got {lines[0]!r}"
        )
    if len(set(header[i] for i in value_columns)) != len(value_columns):
        raise CorpusError(f"{path}: a value column is named twice")
    rows = [line.split(",") for line in lines[1:] if line.strip()]
    texts = [row[0].strip() for row in rows]
    try:
        matrix = np.array(
            [[float(row[i]) if row[i].strip() else np.nan for i in value_columns] for row in rows],
            dtype=np.float64,
        ).reshape(len(rows), len(value_columns))
    except (ValueError, IndexError) as error:
        raise CorpusError(f"{path}: unreadable value ({error})") from None
    labels = [row[label_column].strip() for row in rows] if label_column is not None else None
    columns = [names[i] for i in value_columns]
    return _Csv(texts, matrix, columns, labels, raw)


def _rows_of(texts: list[str], stamp: str) -> int:
    """The first row bearing ``stamp``: NAB's sweeper enters and leaves windows there."""
    wanted = stamp.strip().split(".", 1)[0]
    try:
        return texts.index(wanted)
    except ValueError:
        raise CorpusError(f"window edge {stamp!r} is not a timestamp of the file") from None


def nab_windows(n_rows: int, label_rows: list[int]) -> list[tuple[int, int]]:
    """NAB's window rule for a file labelled with instants only: windows centred on the labels,
    together about 10% of the file, merged where they touch, never inside the probation period."""
    if not label_rows or n_rows == 0:
        return []
    width = max(1, int(WINDOW_FRACTION * n_rows / len(label_rows)))
    windows: list[tuple[int, int]] = []
    for row in sorted(label_rows):
        start, end = max(0, row - width // 2), min(n_rows - 1, row + width // 2)
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(end, windows[-1][1]))
        else:
            windows.append((start, end))
    first_scored = probation_rows(n_rows)
    return [(max(s, first_scored), e) for s, e in windows if e >= first_scored]


def load_corpus(path: str | Path) -> Corpus:
    """A NAB-layout directory, or one CSV (``timestamp,value,label`` with label 1 = anomaly)."""
    root = Path(path)
    if root.is_file():
        return _load_single_csv(root)
    data_dir = root / "data"
    windows_file = root / "labels" / "combined_windows.json"
    if not data_dir.is_dir() or not windows_file.is_file():
        raise CorpusError(
            f"{root}: not a corpus (expected data/<category>/<file>.csv and "
            "labels/combined_windows.json, or a single CSV file)"
        )
    windows_raw = windows_file.read_bytes()
    all_windows: dict[str, list[list[str]]] = orjson.loads(windows_raw)
    labels_file = root / "labels" / "combined_labels.json"
    labels_raw = labels_file.read_bytes() if labels_file.is_file() else b"{}"
    all_labels: dict[str, list[str]] = orjson.loads(labels_raw)
    digest = hashlib.sha256(windows_raw + labels_raw)
    series = []
    for csv_path in sorted(data_dir.glob("*/*.csv")):
        key = csv_path.relative_to(data_dir).as_posix()
        if key not in all_windows:
            raise CorpusError(f"{key}: no entry in labels/combined_windows.json")
        csv = _read_csv(csv_path)
        texts, values, raw = csv.texts, csv.values, csv.raw
        digest.update(key.encode() + b"\0" + raw)
        timestamps = parse_timestamps(texts, key)
        windows = tuple(
            (_rows_of(texts, start), _rows_of(texts, end)) for start, end in all_windows[key]
        )
        labels = tuple(_rows_of(texts, stamp) for stamp in all_labels.get(key, []))
        series.append(
            LabelledSeries(
                key=key,
                timestamp_text=tuple(texts),
                timestamps=timestamps,
                values=values,
                windows=windows,
                labels=labels,
                kept_rows=increasing_rows(timestamps),
                **csv.multivariate,  # type: ignore[arg-type]
            )
        )
    if not series:
        raise CorpusError(f"{data_dir}: no <category>/<file>.csv files")
    return Corpus(root=root, series=tuple(series), fingerprint=digest.hexdigest()[:16])


def _load_single_csv(path: Path) -> Corpus:
    csv = _read_csv(path)
    texts, values, labels, raw = csv.texts, csv.values, csv.labels, csv.raw
    if labels is None:
        raise CorpusError(f"{path}: a single-file corpus needs a 'label' column (1 = anomaly)")
    try:
        flagged = [i for i, text in enumerate(labels) if text and float(text) != 0]
    except ValueError as error:
        raise CorpusError(f"{path}: unreadable label ({error})") from None
    timestamps = parse_timestamps(texts, path.name)
    series = LabelledSeries(
        key=path.name,
        timestamp_text=tuple(texts),
        timestamps=timestamps,
        values=values,
        windows=tuple(nab_windows(len(values), _first_of_runs(flagged))),
        labels=tuple(flagged),
        kept_rows=increasing_rows(timestamps),
        **csv.multivariate,  # type: ignore[arg-type]
    )
    digest = hashlib.sha256(path.name.encode() + b"\0" + raw).hexdigest()[:16]
    return Corpus(root=path, series=(series,), fingerprint=digest)


def _first_of_runs(rows: list[int]) -> list[int]:
    """A labelled stretch of consecutive rows is one anomaly: centre its window on its middle."""
    runs: list[list[int]] = []
    for row in rows:
        if runs and row == runs[-1][-1] + 1:
            runs[-1].append(row)
        else:
            runs.append([row])
    return [run[len(run) // 2] for run in runs]

"""Where a task's results go: an output place (a folder, or an S3 prefix), each object written
whole or not at all.

Layout, under the output::

    anomalies/<input file name>-<run key>.parquet|csv   the detections of one input file
    done/fit|detect/<input file name>-<run key>.json    its outcomes, written last

(a group of inputs holding parts of the same series is named ``<first input>+<others>``).
    summary-fit.json, summary-detect.json               the last run's summary

An anomalies table holds ``series_key, timestamp, score, expected, lower, upper`` (the band of
the model that flagged the point; null where it has none). With several value columns, two
more kinds of column follow: ``column``, the column the detection is blamed on, and
``share_<column>`` for each value column in the order given, each detection's shares summing
to 1. A multivariate model's detection carries its shares (``column`` the largest, the first of
equals; ``expected`` its expected value of that cell, ``lower``/``upper`` null); a per-column
model's is that column's alone (share 1, the others 0, and its band). Rows are in time order,
a series' columns in the order given where they flag the same time.

``run key`` names the input's bytes and the job (``job.run_key``): a re-run that finds the
``done`` record of a file has nothing to do for it, and a task cut short (a crash, Ctrl-C, a
worker killed) leaves no record, so that file is done again, from the start, by the next run or
another worker. A folder's files are written under a temporary name and renamed into place, an
S3 object by one PUT, so a reader (or a second copy of the same task) never sees a half.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from .job import FileOutcome, SeriesOutcome
from .places import Place

ANOMALY_COLUMNS = ("series_key", "timestamp", "score", "expected", "lower", "upper")
#: With several value columns: the column a detection is blamed on, then each column's share.
COLUMN, SHARE = "column", "share_"
#: A done record is small; one larger than this is not ours and is redone.
MAX_RECORD_BYTES = 64 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9_=-]+")


def _name(input_name: str, key: str) -> str:
    """A file-name-safe form of the input's name (no dots: never hidden, never a suffix)."""
    return f"{_UNSAFE.sub('_', input_name)[:120]}-{key}"


def done_key(mode: str, input_name: str, key: str) -> str:
    return f"done/{mode}/{_name(input_name, key)}.json"


def anomalies_key(input_name: str, key: str, output_format: str) -> str:
    return f"anomalies/{_name(input_name, key)}.{output_format}"


def read_done(place: Place, relative: str) -> FileOutcome | None:
    """A file's earlier outcome, or None when it was never completed (or the record is not one
    of ours: then it is done again and the record replaced)."""
    from warden_algos.modelstore.objects import TooLarge

    try:
        found = place.objects.get(place.key(relative), limit=MAX_RECORD_BYTES)
    except TooLarge:
        return None
    if found is None:
        return None
    try:
        record = orjson.loads(found[0])
        series = [SeriesOutcome(**item) for item in record["series"]]
        return FileOutcome(
            record["file"], record["run_key"], True, series, record.get("error"),
            record.get("anomalies_file"), tuple(record.get("together_with", ())),
        )  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def write_done(place: Place, relative: str, outcome: FileOutcome) -> None:
    record: dict[str, Any] = {
        "file": outcome.file,
        "run_key": outcome.run_key,
        "series": [item.as_json() for item in outcome.series],
        "error": outcome.error,
        "anomalies_file": outcome.anomalies_file,
        "together_with": list(outcome.together_with),
    }
    place.objects.put(place.key(relative), orjson.dumps(record, option=orjson.OPT_INDENT_2))


def anomaly_columns(value_columns: Sequence[str]) -> list[str]:
    """The columns of an anomalies table: ``ANOMALY_COLUMNS``, then with several value columns
    ``column`` and a share per value column."""
    if len(value_columns) < 2:
        return list(ANOMALY_COLUMNS)
    return [*ANOMALY_COLUMNS, COLUMN, *(f"{SHARE}{name}" for name in value_columns)]


def anomaly_table(rows: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "series_key": pa.array(rows["series_key"], pa.string()),
            "timestamp": pa.array(rows["timestamp"], pa.int64()),
            **{
                name: pa.array(rows[name], pa.string() if name == COLUMN else pa.float64())
                for name in list(rows)[2:]
            },
        }
    )


class Detections:
    """A series' detections, from its one model or from each of its columns' models, as the
    rows of an anomalies table (``anomaly_columns``)."""

    def __init__(self, series_key: str, columns: Sequence[str]) -> None:
        self.series_key, self.columns = series_key, list(columns)
        self.found: list[tuple[int, int, list[Any]]] = []  # (time, column, row) to sort by

    def add(self, unit: Any, result: Any) -> int:
        """The detections of ``result``, which scored ``unit`` (a ``training.Unit``); how
        many."""
        at = np.searchsorted(unit.timestamps, result.timestamps).tolist()
        stamps, scores = result.timestamps.tolist(), np.asarray(result.scores).tolist()
        m = len(self.columns)
        for number, (index, stamp, score) in enumerate(zip(at, stamps, scores, strict=True)):
            row: list[Any] = [self.series_key, stamp, score]
            if unit.columns:  # a matrix: its shares; the cell of the largest is its expected
                shares = [float(share) for share in result.contributions[number]]
                top = int(np.argmax(shares))
                cells = result.expected
                row += [None if cells is None else _cell(cells[index, top]), None, None]
            else:
                row += [band_at(result.expected, index), band_at(result.lower, index),
                        band_at(result.upper, index)]  # fmt: skip
                top = self.columns.index(unit.column) if unit.column is not None else 0
                shares = [1.0 if column == top else 0.0 for column in range(m)]
            if m > 1:
                row += [self.columns[top], *shares]
            self.found.append((stamp, top, row))
        return len(at)

    def into(self, rows: dict[str, list[Any]]) -> None:
        """Append the rows, in time order (columns in their order at one time)."""
        self.found.sort(key=lambda item: item[:2])
        for _, _, row in self.found:
            for name, value in zip(rows, row, strict=True):
                rows[name].append(value)


def write_anomalies(
    place: Place, relative: str, rows: dict[str, list[Any]], output_format: str
) -> None:
    """The detections as Parquet or CSV (missing band values are nulls), as one object."""
    import pyarrow as pa

    table = anomaly_table(rows)
    sink = pa.BufferOutputStream()
    if output_format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sink)
    place.objects.put(place.key(relative), sink.getvalue().to_pybytes())


def band_at(band: np.ndarray[Any, Any] | None, index: int) -> float | None:
    if band is None:
        return None
    return _cell(band[index])


def _cell(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number

"""Where a task's results go: an output place (a folder, or an S3 prefix), each object written
whole or not at all.

Layout, under the output::

    anomalies/<input file name>-<run key>.parquet|csv   the detections of one input file
    done/fit|detect/<input file name>-<run key>.json    its outcomes, written last

(a group of inputs holding parts of the same series is named ``<first input>+<others>``).
    summary-fit.json, summary-detect.json               the last run's summary

``run key`` names the input's bytes and the job (``job.run_key``): a re-run that finds the
``done`` record of a file has nothing to do for it, and a task cut short (a crash, Ctrl-C, a
worker killed) leaves no record, so that file is done again, from the start, by the next run or
another worker. A folder's files are written under a temporary name and renamed into place, an
S3 object by one PUT, so a reader (or a second copy of the same task) never sees a half.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

from .job import FileOutcome, SeriesOutcome
from .places import Place

ANOMALY_COLUMNS = ("series_key", "timestamp", "score", "expected", "lower", "upper")
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


def anomaly_table(rows: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "series_key": pa.array(rows["series_key"], pa.string()),
            "timestamp": pa.array(rows["timestamp"], pa.int64()),
            **{name: pa.array(rows[name], pa.float64()) for name in ANOMALY_COLUMNS[2:]},
        }
    )


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
    value = float(band[index])
    return None if np.isnan(value) else value

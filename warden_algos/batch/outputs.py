"""Where a task's results go: an output folder, each file written whole or not at all.

Layout, under the output folder::

    anomalies/<input file name>-<run key>.parquet|csv   the detections of one input file
    done/fit|detect/<input file name>-<run key>.json    its outcomes, written last

``run key`` names the input's bytes and the job (``job.run_key``): a re-run that finds the
``done`` record of a file has nothing to do for it, and a task cut short (a crash, Ctrl-C, a
worker killed) leaves no record, so that file is done again, from the start, by the next run or
another worker. Every file is written under a temporary name and renamed into place, so a reader
(or a second copy of the same task) never sees a half.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .job import FileOutcome, SeriesOutcome

ANOMALY_COLUMNS = ("series_key", "timestamp", "score", "expected", "lower", "upper")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def _name(input_name: str, key: str) -> str:
    return f"{_UNSAFE.sub('_', input_name)[:120]}-{key}"


def done_path(output: Path, mode: str, input_name: str, key: str) -> Path:
    return output / "done" / mode / f"{_name(input_name, key)}.json"


def anomalies_path(output: Path, input_name: str, key: str, output_format: str) -> Path:
    return output / "anomalies" / f"{_name(input_name, key)}.{output_format}"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(scratch, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


def read_done(path: Path) -> FileOutcome | None:
    """A file's earlier outcome, or None when it was never completed (or the record is not one
    of ours: then it is done again and the record replaced)."""
    try:
        record = orjson.loads(path.read_bytes())
        series = [SeriesOutcome(**item) for item in record["series"]]
        return FileOutcome(
            record["file"], record["run_key"], True, series, record.get("error"),
            record.get("anomalies_file"),
        )  # fmt: skip
    except FileNotFoundError:
        return None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def write_done(path: Path, outcome: FileOutcome) -> None:
    record: dict[str, Any] = {
        "file": outcome.file,
        "run_key": outcome.run_key,
        "series": [item.as_json() for item in outcome.series],
        "error": outcome.error,
        "anomalies_file": outcome.anomalies_file,
    }
    write_atomically(path, orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")


def anomaly_table(rows: dict[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "series_key": pa.array(rows["series_key"], pa.string()),
            "timestamp": pa.array(rows["timestamp"], pa.int64()),
            **{name: pa.array(rows[name], pa.float64()) for name in ANOMALY_COLUMNS[2:]},
        }
    )


def write_anomalies(path: Path, rows: dict[str, list[Any]], output_format: str) -> None:
    """The detections as Parquet or CSV (empty band values are nulls), written atomically."""
    import pyarrow as pa

    table = anomaly_table(rows)
    sink = pa.BufferOutputStream()
    if output_format == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, sink)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, sink)
    write_atomically(path, sink.getvalue().to_pybytes())


def band_at(band: np.ndarray[Any, Any] | None, index: int) -> float | None:
    if band is None:
        return None
    value = float(band[index])
    return None if np.isnan(value) else value

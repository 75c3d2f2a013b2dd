"""What a batch run is, as every task receives it, and what a task reports back.

Everything here is plain data (named tuples of strings and numbers): it travels from the driver
to the workers and back through Dask, which pickles it between our own processes; nothing read
from an input file or a bucket is ever unpickled.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, NamedTuple

import orjson

Mode = Literal["fit", "detect"]


class StoreSpec(NamedTuple):
    """How a worker opens the model store: a local folder, or S3 (as ``models`` takes it)."""

    store_dir: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    endpoint_url: str | None = None
    config: str | None = None


class JobSpec(NamedTuple):
    mode: Mode
    algorithm: str
    params: dict[str, Any]
    store: StoreSpec
    output: str  # a folder, or s3://bucket/prefix
    endpoint_url: str | None = None  # of s3:// inputs and output (the store has its own)
    output_format: Literal["parquet", "csv"] = "parquet"
    timestamp_column: str = "timestamp"
    #: One value column (a series as it has always been), or several (each series a matrix).
    value_columns: tuple[str, ...] = ("value",)
    key_columns: tuple[str, ...] = ()
    since: bool = False  # detect: score after the last scored point, then move the model on
    why: str = "batch"

    def fingerprint(self, sdk_version: str) -> bytes:
        """What, beside a file's bytes, decides a task's results: a re-run with the same
        fingerprint and input bytes has nothing to do."""
        decisive = {
            "mode": self.mode,
            "algorithm": self.algorithm,
            "params": self.params,
            "output_format": self.output_format,
            "columns": [self.timestamp_column, *self.value_columns, *self.key_columns],
            "since": self.since,
            "sdk": sdk_version,
        }
        if len(self.value_columns) > 1:  # which of the columns are values (one: as it was)
            decisive["value_columns"] = list(self.value_columns)
        return orjson.dumps(decisive, option=orjson.OPT_SORT_KEYS)


def run_key(file_bytes_sha256: str, fingerprint: bytes) -> str:
    """The name of a task's results: 16 hex digits of the input's content and the job's."""
    return hashlib.sha256(file_bytes_sha256.encode() + b"\0" + fingerprint).hexdigest()[:16]


class SeriesOutcome(NamedTuple):
    key: str
    status: Literal["ok", "failed"]
    code: str | None = None  # a wire error code (INVALID_INPUT, STATE_NOT_FOUND, ...)
    message: str | None = None
    points: int = 0  # fitted, or scored
    anomalies: int = 0
    sha256: str | None = None  # the model pushed (fit, detect --since)
    column: str | None = None  # a per-column model's column (``key`` is then the model's key)

    def as_json(self) -> dict[str, Any]:
        found = self._asdict()
        if found["column"] is None:  # a whole series' outcome: as it always was
            del found["column"]
        return found


class FileOutcome(NamedTuple):
    """One group of input files (most often one file): its series' outcomes, and whether it
    was done before."""

    file: str  # the group's first input
    run_key: str | None
    skipped: bool
    series: list[SeriesOutcome]
    error: str | None = None  # an input could not be read: every series in the group unknown
    anomalies_file: str | None = None
    together_with: tuple[str, ...] = ()  # the group's other inputs (parts of the same series)

    @property
    def inputs(self) -> int:
        return 1 + len(self.together_with)

"""Series to fit, read from CSV or Parquet files: a long table keyed by columns, or one per file.

What a file may hold is what a trainer exports from a metrics store: rows in any order,
timestamps as Unix seconds or ISO 8601 (a time without a zone is UTC), missing values as empty
cells or NaN. Rows are sorted by time here and missing values kept as NaN; everything else is
left to the single-series path's own checks (``run_fit``), so a series with a duplicate
timestamp is refused with exactly the message a ``fit`` request gets. A problem in one series'
rows (an unreadable time or value) is that series' failure alone; a problem with a file (cannot
be read, a named column is missing) stops before anything is fitted, since a long table's series
may span files.

Several value columns (``--value-columns temp,pressure``) make each series a matrix: ``matrix``
holds its columns in the order named (``values`` the first, as ``evaluation.corpus`` does) and
``columns`` their names. One value column, however named, is the single-series table it has
always been (``matrix`` None). Every part of a series must hold every value column: a part
without one, while another part has it, is refused naming both (a series does not change its
columns between files).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from warden_algos.interfaces.multivariate import MAX_COLUMN_NAME, MAX_COLUMNS

from .records import ModelStoreError

__all__ = [
    "TableError",
    "TableSeries",
    "column_key",
    "file_stem",
    "read_keys",
    "read_series",
    "value_columns",
]

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zst", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
_FILE, _ROW = "__warden_file", "__warden_row"


class TableError(ModelStoreError):
    """A file that cannot give series at all: unreadable, of an unknown kind, a column missing."""


class TableSeries(NamedTuple):
    key: str
    dimensions: list[str]
    timestamps: npt.NDArray[np.int64]  # sorted (stably) by time
    values: npt.NDArray[np.float64]  # NaN where missing; of several columns, the first
    problem: str | None = None  # why the series' rows cannot be fitted (then the arrays are empty)
    #: Several value columns: rows x columns, in the order of ``columns``; None for one.
    matrix: npt.NDArray[np.float64] | None = None
    columns: tuple[str, ...] = ()


def value_columns(value_column: str, value_columns: str | None) -> list[str]:
    """The value columns ``--value-column``/``--value-columns`` name: the comma-separated list
    (at most MAX_COLUMNS, as a request's matrix), else the one column."""
    if value_columns is None:
        return [value_column]
    names = [name.strip() for name in value_columns.split(",") if name.strip()]
    if not names:
        raise TableError("--value-columns names no column (give them comma-separated: a,b,c)")
    if len(names) > MAX_COLUMNS:
        raise TableError(
            f"--value-columns names {len(names)} columns: at most {MAX_COLUMNS} (as a request's "
            "matrix); split them over several runs"
        )
    long = [name for name in names if len(name) > MAX_COLUMN_NAME]
    if long:
        raise TableError(f"a value column's name is at most {MAX_COLUMN_NAME} characters")
    return names


def column_key(series_key: str, column: str) -> str:
    """The key of one column's model, for an algorithm that scores one series at a time: the
    series key and ``column=<name>``, as a long table keyed by the series' columns and a
    ``column`` column would name it (``host=a,column=temp``, ``web-3,column=temp``)."""
    return f"{series_key},column={column}"


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise TableError(
        f"{path}: not a table this reads (name it *.csv, *.csv.gz, *.tsv, *.parquet or *.pq)"
    )


def file_stem(path: Path) -> str:
    """The series key of a file holding one series: its name without the table suffix."""
    name = path.name
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _read(
    path: Path, columns: list[str], text_columns: list[str], values_flag: str = "--value-column"
) -> Any:
    """The named columns of a file (only those are read), or a TableError naming what it has."""
    import pandas as pd

    kind = _kind(path)
    if kind == "parquet":
        from warden_algos.extras import require

        require("data", what="reading Parquet (models fit)")
    sep = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            has = pq.read_schema(path).names
            frame = pd.read_parquet(path, columns=[name for name in columns if name in has])
        else:
            frame = pd.read_csv(
                path,
                sep=sep,
                dtype=dict.fromkeys(text_columns, "string"),
                usecols=lambda name: name in columns,
                # exact decimal -> float64 on every pandas: before 3.1 its default parser can
                # be one ulp off, so a model fitted from a CSV differed from the same values
                # sent on the wire (aeon, the `ranges` extra, caps pandas below 3.1)
                float_precision="round_trip",
            )
            has = list(frame.columns)
    except Exception as error:  # OSError, or a parser's own (pandas' ParserError, pyarrow's)
        first = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise TableError(f"cannot read {path}: {first}") from None
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        if kind == "csv":
            has = list(pd.read_csv(path, sep=sep, nrows=0).columns)  # all of them, to say so
        raise MissingColumns(
            f"{path} has no column {', '.join(repr(name) for name in missing)} (it has "
            f"{', '.join(map(str, has[:20]))}): name the columns with --key-columns, "
            f"--timestamp-column and {values_flag}",
            path,
            missing,
        )
    return frame[columns]


class MissingColumns(TableError):
    def __init__(self, message: str, path: Path, missing: list[str]) -> None:
        super().__init__(message)
        self.path, self.missing = path, missing


def read_series(
    paths: Sequence[Path],
    *,
    timestamp_column: str = "timestamp",
    value_column: str | Sequence[str] = "value",
    key_columns: Sequence[str] = (),
    key: str | None = None,
) -> list[TableSeries]:
    """The series in ``paths``: with ``key_columns``, one per distinct combination across all
    the files (key ``host=a,metric=cpu``, dimensions ``["host=a", "metric=cpu"]``); without,
    one per file name without its suffix (files of one name in several folders, such as
    ``day=1/web-3.csv`` and ``day=2/web-3.csv``, are parts of one series), or one series
    named ``key`` that all the files hold. ``value_column``: one name, or several (each series
    then carries a matrix of them)."""

    if key is not None and key_columns:
        raise TableError("--key names the series the files hold; a long table uses --key-columns")
    value_names = [value_column] if isinstance(value_column, str) else list(value_column)
    if not 1 <= len(value_names) <= MAX_COLUMNS:
        raise TableError(f"a series has 1 to {MAX_COLUMNS} value columns, not {len(value_names)}")
    columns = [*key_columns, timestamp_column, *value_names]
    if len(set(columns)) != len(columns):
        raise TableError("the key, timestamp and value columns must be different columns")
    flag = "--value-column" if len(value_names) == 1 else "--value-columns"
    stems = [key or file_stem(path) for path in paths]
    frames = []
    for index, path in enumerate(paths):
        try:
            frame = _read(path, columns, [*key_columns, timestamp_column], flag)
        except MissingColumns as error:
            raise _mixed(error, paths, index, stems, value_names, bool(key_columns)) from None
        frames.append(frame.assign(**{_FILE: index, _ROW: np.arange(len(frame))}))
    if not key_columns:
        parts: dict[str, list[Any]] = {}
        for stem, frame in zip(stems, frames, strict=True):
            parts.setdefault(stem, []).append(frame)
        return [
            _series(name, [], _joined(pieces), paths, timestamp_column, value_names)
            for name, pieces in parts.items()
        ]
    table = _joined(frames)
    for name in key_columns:
        table[name] = table[name].astype("string").fillna("")
    found = []
    for values, rows in table.groupby(list(key_columns), sort=True, dropna=False):
        parts_of_key = values if isinstance(values, tuple) else (values,)
        dimensions = [
            f"{name}={part}" for name, part in zip(key_columns, parts_of_key, strict=True)
        ]
        found.append(
            _series(",".join(dimensions), dimensions, rows, paths, timestamp_column, value_names)
        )
    return found


def _mixed(
    error: MissingColumns,
    paths: Sequence[Path],
    index: int,
    stems: list[str],
    values: list[str],
    long_table: bool,
) -> TableError:
    """A file without some value columns: said as a mix of column sets when another part of
    its series (a file of its name; for a long table, any other file) has them."""
    lacking = [name for name in error.missing if name in values]
    if len(values) < 2 or not lacking or len(lacking) != len(error.missing):
        return error
    for other, path in enumerate(paths):
        if other == index or (not long_table and stems[other] != stems[index]):
            continue
        try:
            _read(path, lacking, [])
        except TableError:
            continue
        part = "another part of the table" if long_table else f"another part of {stems[index]!r}"
        return TableError(
            f"{_label(paths, index)} has no value column "
            f"{', '.join(repr(name) for name in lacking)} but {_label(paths, other)}, {part}, "
            "has: every part of a series must hold the same value columns"
        )
    return error


def _label(paths: Sequence[Path], index: int) -> str:
    """A file as a message names it: by name, or with its folder when several inputs share it
    (day folders of one sensor's file)."""
    path = paths[index]
    return path.name if [p.name for p in paths].count(path.name) == 1 else _folder_name(path)


def read_keys(path: Path, key_columns: Sequence[str]) -> list[tuple[str, ...]]:
    """The distinct series keys of one file of a long table, as ``read_series`` forms them
    (text, a missing cell as ""), from its key columns alone."""
    frame = _read(path, list(key_columns), list(key_columns))
    for name in key_columns:
        frame[name] = frame[name].astype("string").fillna("")
    return list(frame.drop_duplicates().itertuples(index=False, name=None))


def _folder_name(path: Path) -> str:
    return "/".join(path.parts[-2:])


def _joined(frames: list[Any]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _series(
    key: str,
    dimensions: list[str],
    rows: Any,
    paths: Sequence[Path],
    timestamp_column: str,
    value_columns: list[str],
) -> TableSeries:
    def where(position: int) -> str:
        row = rows.iloc[position]
        index = int(row[_FILE])
        line = int(row[_ROW]) + 1
        label = _label(paths, index)
        return f"{label} line {line + 1}" if _kind(paths[index]) == "csv" else f"{label} row {line}"

    several = len(value_columns) > 1
    try:
        times = _times(rows[timestamp_column], where)
        cells = [
            _values(rows[name], _in_column(where, name) if several else where)
            for name in value_columns
        ]
    except ValueError as error:
        empty = np.empty(0)
        matrix = np.empty((0, len(value_columns))) if several else None
        return TableSeries(
            key, dimensions, empty.astype(np.int64), empty, str(error), matrix,
            tuple(value_columns) if several else (),
        )  # fmt: skip
    order = np.argsort(times, kind="stable")
    if not several:
        return TableSeries(key, dimensions, times[order], cells[0][order])
    matrix = np.ascontiguousarray(np.column_stack(cells)[order])
    first = np.ascontiguousarray(matrix[:, 0])
    return TableSeries(key, dimensions, times[order], first, None, matrix, tuple(value_columns))


def _in_column(where: Any, name: str) -> Any:
    """``where``, naming the value column too (a series of several)."""
    return lambda position: f"{where(position)} column {name!r}"


def _times(raw: Any, where: Any) -> npt.NDArray[np.int64]:
    """Unix seconds from whole numbers (numeric or text) or ISO 8601 times (text, datetimes);
    each text cell may be either."""
    import pandas as pd

    absent = raw.isna().to_numpy()
    if absent.any():
        raise ValueError(f"{where(int(np.argmax(absent)))}: no timestamp")
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        return _seconds(raw, where, np.arange(len(raw)))
    numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    seconds = np.zeros(len(raw), dtype=np.int64)
    text = np.isnan(numbers)
    if text.any():
        rows = np.flatnonzero(text)
        parsed = pd.to_datetime(raw.iloc[rows], utc=True, format="ISO8601", errors="coerce")
        bad = parsed.isna().to_numpy()
        if bad.any():
            first = int(rows[int(np.argmax(bad))])
            raise ValueError(
                f"{where(first)}: timestamp {str(raw.iloc[first])[:60]!r} is neither Unix "
                "seconds nor an ISO 8601 time"
            )
        seconds[rows] = _seconds(parsed, where, rows)
    exact = ~text
    if exact.any():
        given = numbers[exact]
        wrong = (given != np.floor(given)) | ~np.isfinite(given) | (np.abs(given) > 2.0**62)
        if wrong.any():
            first = int(np.flatnonzero(exact)[int(np.argmax(wrong))])
            raise ValueError(
                f"{where(first)}: timestamp {str(raw.iloc[first])[:60]} is not whole Unix seconds"
            )
        whole = pd.to_numeric(raw[exact], errors="coerce")
        seconds[exact] = whole.to_numpy(dtype=np.int64)
    return seconds


def _seconds(times: Any, where: Any, rows: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    """Whole seconds since the epoch of datetimes (UTC when they name no zone); ``rows`` are
    their positions in the series, for the message."""
    import pandas as pd

    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    since = times - pd.Timestamp(0, tz="UTC")
    second = pd.Timedelta(seconds=1)
    partial = (since % second != pd.Timedelta(0)).to_numpy()
    if partial.any():
        first = int(np.argmax(partial))
        raise ValueError(
            f"{where(int(rows[first]))}: timestamp {times.iloc[first]} is not a whole second"
        )
    seconds: npt.NDArray[np.int64] = (since // second).to_numpy(dtype=np.int64)
    return seconds


def _values(raw: Any, where: Any) -> npt.NDArray[np.float64]:
    """Numbers; an empty cell or NaN is a missing value (kept: NaN); text is refused."""
    import pandas as pd

    numbers = pd.to_numeric(raw, errors="coerce")
    unread = numbers.isna() & raw.notna()
    if unread.any():
        words = raw[unread].astype("string").str.strip().str.lower()
        text = ~words.isin(["", "nan", "na", "n/a", "null", "none"]).to_numpy()
        if text.any():
            first = int(np.flatnonzero(unread.to_numpy())[int(np.argmax(text))])
            raise ValueError(f"{where(first)}: value {str(raw.iloc[first])[:60]!r} is not a number")
    values: npt.NDArray[np.float64] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return values

"""``models fit``: series read from CSV and Parquet tables, fitted as a ``fit`` request would be,
each pushed under its own key; one bad series fails alone."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.extras import MissingExtra
from warden_algos.interfaces.run_state import run_fit
from warden_algos.models_folder import params_id
from warden_algos.modelstore.store import SeriesId
from warden_algos.modelstore.tables import TableError, read_series

from .conftest import cli
from .test_model_store import T0, Backend, backend, local_backend, models, one_line_error, series

__all__ = ["backend"]  # the fixture, shared with test_model_store

PARAMS_ID = params_id(KSigma().get_params())


def iso(seconds: np.ndarray) -> list[str]:
    return [pd.Timestamp(int(s), unit="s", tz="UTC").isoformat() for s in seconds]


def expected_sha256(times: np.ndarray, values: np.ndarray) -> str:
    """The sha256 of what a ``fit`` request on the sorted series returns (states are
    deterministic bytes)."""
    return hashlib.sha256(run_fit(KSigma(), times, values).state).hexdigest()


def shuffled_table(seed: int = 0) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Two series in one long table, rows shuffled, one as Unix seconds and one as ISO 8601,
    a missing value in each; and each series as it should be fitted."""
    rng = np.random.default_rng(seed)
    frames, truth = [], {}
    for host, as_text in (("web-1", False), ("web-2", True)):
        times, values = series(200, seed=len(truth))
        values[17] = np.nan
        truth[f"host={host},metric=cpu"] = (times, values)
        stamps: list[str] | np.ndarray = iso(times) if as_text else times
        frames.append(pd.DataFrame({"host": host, "metric": "cpu", "ts": stamps, "v": values}))
    table = pd.concat(frames, ignore_index=True)
    return table.iloc[rng.permutation(len(table))], truth


def test_fit_pushes_one_model_per_series_of_a_long_csv_table(
    backend: Backend, tmp_path: Path
) -> None:
    table, truth = shuffled_table()
    path = tmp_path / "history.csv"
    table.to_csv(path, index=False)
    done = models(
        backend, "fit", str(path), "--algorithm", "ksigma", "--key-columns", "host,metric",
        "--timestamp-column", "ts", "--value-column", "v", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    answer = orjson.loads(done.stdout)
    assert (answer["pushed"], answer["failed"]) == (2, 0)
    for key, (times, values) in truth.items():
        pointer = backend.store.pointer(SeriesId("ksigma", PARAMS_ID, key))
        assert pointer is not None, key
        assert pointer.sha256 == expected_sha256(times, values)  # sorted, NaN kept
        assert pointer.state.seen_points == 200 and pointer.state.seen_start == T0
        assert pointer.why == "models fit history.csv"
    again = models(backend, "fit", str(path), "--algorithm", "ksigma", "--key-columns",
                   "host,metric", "--timestamp-column", "ts", "--value-column", "v")  # fmt: skip
    assert again.returncode == 0
    assert again.stdout.decode().splitlines()[-1].endswith("0 pushed, 2 current, 0 failed")


def test_fit_reads_a_parquet_table_with_datetime_timestamps(tmp_path: Path) -> None:
    table, truth = shuffled_table(seed=1)
    table = table.assign(ts=pd.to_datetime(table["ts"].map(str).map(_as_time), utc=True))
    path = tmp_path / "history.parquet"
    table.to_parquet(path, index=False)
    store = local_backend(tmp_path / "store")
    done = models(
        store, "fit", str(path), "--algorithm", "ksigma", "--key-columns", "host,metric",
        "--timestamp-column", "ts", "--value-column", "v",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    for key, (times, values) in truth.items():
        pointer = store.store.pointer(SeriesId("ksigma", PARAMS_ID, key))
        assert pointer is not None and pointer.sha256 == expected_sha256(times, values)


def _as_time(text: str) -> pd.Timestamp:
    return pd.Timestamp(int(text), unit="s", tz="UTC") if text.isdigit() else pd.Timestamp(text)


def test_a_series_with_a_duplicate_timestamp_fails_alone_with_the_fit_request_message(
    tmp_path: Path,
) -> None:
    rows = []
    for host in ("a", "b", "c"):
        times, values = series(100, seed=ord(host))
        if host == "b":
            times[40] = times[39]  # a duplicate, not next to its twin once the file is shuffled
        rows += [
            {"host": host, "timestamp": t, "value": v} for t, v in zip(times, values, strict=True)
        ]
    table = pd.DataFrame(rows).sample(frac=1, random_state=3)
    path = tmp_path / "three.csv"
    table.to_csv(path, index=False)
    store = local_backend(tmp_path / "store")
    done = models(store, "fit", str(path), "--algorithm", "ksigma", "--key-columns", "host",
                  "--json")  # fmt: skip
    assert done.returncode == 1
    outcome = {row["key"]: row for row in orjson.loads(done.stdout)["series"]}
    assert [outcome[f"host={h}"]["status"] for h in "abc"] == ["pushed", "failed", "pushed"]
    b = table[table["host"] == "b"].sort_values("timestamp", kind="stable")
    request = {"interface": "fit", "algorithm": "ksigma", "fit": {
        "timestamps": b["timestamp"].tolist(), "values": b["value"].tolist()}}  # fmt: skip
    wire = orjson.loads(cli("run", stdin=orjson.dumps(request)).stdout)["error"]
    assert wire["code"] == "INVALID_INPUT"
    assert outcome["host=b"]["error"] == f"INVALID_INPUT {wire['field']}: {wire['message']}"
    assert "times must be strictly increasing" in wire["message"]
    assert [p.series_key for p in store.store.pointers()] == ["host=a", "host=c"]  # type: ignore[union-attr]
    text = models(store, "fit", str(path), "--algorithm", "ksigma", "--key-columns", "host")
    assert f"FAILED   host=b: INVALID_INPUT {wire['field']}" in text.stdout.decode()


def test_rows_that_cannot_be_read_fail_their_series_only(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "host,timestamp,value\n"
        "ok,2024-01-01T00:01:00+01:00,1\n"  # 23:01 UTC the day before: sorted first
        "ok,2024-01-01T00:00:00Z,\n"  # an empty cell: a missing value
        "ok,1704067260,NaN\n"
        "text,1704067200,high\n"
        "fraction,1704067200.5,1\n"
        "nowhen,,1\n"
    )
    found = {s.key: s for s in read_series([path], key_columns=["host"])}
    ok = found["host=ok"]
    assert ok.problem is None
    assert ok.timestamps.tolist() == [1704063660, 1704067200, 1704067260]
    assert ok.values[0] == 1 and np.isnan(ok.values[1:]).all()
    assert found["host=text"].problem == "mixed.csv line 5: value 'high' is not a number"
    assert "line 6: timestamp 1704067200.5 is not whole Unix seconds" in str(
        found["host=fraction"].problem
    )
    assert found["host=nowhen"].problem == "mixed.csv line 7: no timestamp"


def test_one_series_per_file_is_named_by_the_file_or_by_key(tmp_path: Path) -> None:
    for name in ("web-3.csv", "web-4.csv.gz"):
        times, values = series(50)
        pd.DataFrame({"timestamp": times, "value": values}).to_csv(tmp_path / name, index=False)
    found = read_series([tmp_path / "web-3.csv", tmp_path / "web-4.csv.gz"])
    assert [s.key for s in found] == ["web-3", "web-4"]
    assert [s.key for s in read_series([tmp_path / "web-3.csv"], key="host=web-3")] == [
        "host=web-3"
    ]
    both = read_series([tmp_path / "web-3.csv", tmp_path / "web-4.csv.gz"], key="x")
    assert [s.key for s in both] == ["x"] and both[0].timestamps.shape == (100,)  # run_fit
    # refuses its repeated stamps, as it refuses a request's
    with pytest.raises(TableError, match="--key names the series the files hold"):
        read_series([tmp_path / "web-3.csv"], key="x", key_columns=["host"])


def test_files_of_one_name_in_several_folders_are_one_series(tmp_path: Path) -> None:
    """Day folders of one sensor's file (``day=1/web-3.csv``, ``day=2/web-3.csv``) are parts of
    one series, in time order whatever the order of the files; a row's place in a message
    names its own file."""
    times, values = series(100)
    for day, part in (("day=2", slice(50, 100)), ("day=1", slice(0, 50))):
        (tmp_path / day).mkdir()
        frame = pd.DataFrame({"timestamp": times[part], "value": values[part]})
        frame.to_csv(tmp_path / day / "web-3.csv", index=False)
    (tmp_path / "day=3").mkdir()
    (tmp_path / "day=3" / "web-3.csv").write_text("timestamp,value\n,1\n")
    paths = [tmp_path / "day=2" / "web-3.csv", tmp_path / "day=1" / "web-3.csv"]
    (found,) = read_series(paths)
    assert found.key == "web-3" and found.problem is None
    assert found.timestamps.tolist() == times.tolist()
    np.testing.assert_array_equal(found.values, values)
    (broken,) = read_series([*paths, tmp_path / "day=3" / "web-3.csv"])
    assert broken.problem == "day=3/web-3.csv line 2: no timestamp"


def test_a_file_that_cannot_give_series_stops_the_command_before_anything_is_pushed(
    tmp_path: Path,
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("host,timestamp,value\na,1,1\n")
    bad.write_text("host,time,value\nb,1,1\n")
    store = local_backend(tmp_path / "store")
    done = models(
        store, "fit", str(good), str(bad), "--algorithm", "ksigma", "--key-columns", "host"
    )
    assert done.returncode == 1
    assert "bad.csv has no column 'timestamp' (it has host, time, value)" in one_line_error(done)
    assert store.store.pointers() == []
    other = models(store, "fit", str(tmp_path / "data.xlsx"), "--algorithm", "ksigma")
    assert other.returncode == 1 and "not a table this reads" in one_line_error(other)


def test_reading_parquet_without_pyarrow_names_the_data_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(MissingExtra, match=r"pip install 'warden-algos\[data\]'"):
        read_series([path])


# several value columns -----------------------------------------------------------------------


def wide_table() -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Two hosts' cpu and mem in one long table, rows shuffled, a missing cell in each; and
    each host's sorted (times, matrix)."""
    frames, truth = [], {}
    for index, host in enumerate(("a", "b")):
        times, cpu = series(200, seed=index)
        _, mem = series(200, seed=10 + index)
        cpu[17] = np.nan
        truth[f"host={host}"] = (times, np.column_stack([cpu, mem]))
        frames.append(pd.DataFrame({"host": host, "ts": times, "cpu": cpu, "mem": mem}))
    table = pd.concat(frames, ignore_index=True)
    return table.iloc[np.random.default_rng(0).permutation(len(table))], truth


def test_several_value_columns_make_each_series_a_matrix(tmp_path: Path) -> None:
    table, truth = wide_table()
    path = tmp_path / "wide.csv"
    table.to_csv(path, index=False)
    found = read_series([path], timestamp_column="ts", value_column=["mem", "cpu"],
                        key_columns=["host"])  # fmt: skip
    for one in found:
        times, matrix = truth[one.key]
        assert one.problem is None and one.columns == ("mem", "cpu")
        assert one.timestamps.tolist() == times.tolist()
        assert one.matrix is not None
        np.testing.assert_array_equal(one.matrix, matrix[:, ::-1])  # in the order named
        np.testing.assert_array_equal(one.values, matrix[:, 1])
    (single,) = read_series([path], timestamp_column="ts", value_column=["cpu"], key="x")
    (named,) = read_series([path], timestamp_column="ts", value_column="cpu", key="x")
    assert single.matrix is None and single.columns == () and named.matrix is None
    np.testing.assert_array_equal(single.values, named.values)


def test_a_bad_cell_names_its_column_and_parts_must_hold_the_same_columns(tmp_path: Path) -> None:
    for day, rows in (("day=1", "1,1,2\n2,3,4\n"), ("day=2", "3,5,6\n4,7,lots\n")):
        (tmp_path / day).mkdir()
        (tmp_path / day / "web-3.csv").write_text("timestamp,cpu,mem\n" + rows)
    paths = [tmp_path / "day=1" / "web-3.csv", tmp_path / "day=2" / "web-3.csv"]
    (broken,) = read_series(paths, value_column=["cpu", "mem"])
    assert broken.problem == "day=2/web-3.csv line 3 column 'mem': value 'lots' is not a number"
    (tmp_path / "day=2" / "web-3.csv").write_text("timestamp,cpu\n3,5\n")
    with pytest.raises(TableError) as mixed:
        read_series(paths, value_column=["cpu", "mem"])
    assert str(mixed.value) == (
        "day=2/web-3.csv has no value column 'mem' but day=1/web-3.csv, another part of "
        "'web-3', has: every part of a series must hold the same value columns"
    )
    with pytest.raises(TableError, match=r"has no column 'mem' .*--value-columns$"):
        read_series(paths[1:], value_column=["cpu", "mem"])
    with pytest.raises(TableError, match=r"has no column 'disk' .*--value-column$"):
        read_series(paths[1:], value_column="disk")  # one column: as it always said
    with pytest.raises(TableError, match="1 to 256 value columns, not 257"):
        read_series(paths, value_column=[f"c{i}" for i in range(257)])


def test_fit_of_several_columns_pushes_a_model_per_column_or_one_of_the_matrix(
    tmp_path: Path,
) -> None:
    """ksigma fits each column alone, under ``<series>,column=<name>`` and with the column as
    one more dimension; isolation_forest fits one model of the matrix per series."""
    table, truth = wide_table()
    path = tmp_path / "wide.csv"
    table.to_csv(path, index=False)
    store = local_backend(tmp_path / "store")
    flags = ["--key-columns", "host", "--timestamp-column", "ts", "--value-columns", "cpu,mem"]
    done = models(store, "fit", str(path), "--algorithm", "ksigma", *flags, "--json")
    assert done.returncode == 0, done.stderr.decode()
    rows = orjson.loads(done.stdout)["series"]
    assert [(row["key"], row["column"]) for row in rows] == [
        (f"host={h},column={c}", c) for h in "ab" for c in ("cpu", "mem")
    ]
    for host, (times, matrix) in truth.items():
        for index, name in enumerate(("cpu", "mem")):
            pointer = store.store.pointer(SeriesId("ksigma", PARAMS_ID, f"{host},column={name}"))
            fitted = run_fit(KSigma(), times, matrix[:, index], [host, f"column={name}"])
            assert pointer is not None
            assert pointer.sha256 == hashlib.sha256(fitted.state).hexdigest()
    text = models(store, "fit", str(path), "--algorithm", "ksigma", *flags).stdout.decode()
    assert text.splitlines()[-1] == "4 models of 2 series of ksigma: 0 pushed, 4 current, 0 failed"
    forest = '{"n_estimators": 10, "max_samples": 32}'
    done = models(store, "fit", str(path), "--algorithm", "isolation_forest", "--params", forest,
                  *flags, "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    rows = orjson.loads(done.stdout)["series"]
    assert [(row["key"], row["column"]) for row in rows] == [("host=a", None), ("host=b", None)]
    from warden_algos.algorithms.isolation_forest import IsolationForest
    from warden_algos.interfaces.state import decode_state

    forest_id = params_id(IsolationForest(orjson.loads(forest)).get_params())
    series_id = SeriesId("isolation_forest", forest_id, "host=a")
    pointer = store.store.pointer(series_id)
    assert pointer is not None
    blob, _ = store.store.fetch(series_id, pointer.sha256)
    assert decode_state(blob).fields["columns"] == ["cpu", "mem"]
    many = ",".join(f"c{i}" for i in range(257))
    refused = models(store, "fit", str(path), "--algorithm", "ksigma", "--value-columns", many)
    assert refused.returncode == 1
    assert "--value-columns names 257 columns: at most 256" in one_line_error(refused)

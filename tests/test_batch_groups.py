"""Series split over several input files are read whole, by one task: a long table written as
part files (grouped by the keys the workers find in each), and one sensor's file in day folders
(grouped by name). Without this, two tasks would each fit half of a series and the later push
would silently replace the other's model."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.batch import groups
from warden_algos.interfaces.run_state import run_fit

from .test_batch import PARAMS, batch, sensor, series_id, store_of, write_csv


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sets(st.integers(0, 12), max_size=4)), max_size=14))
def test_files_sharing_a_key_are_one_group_and_groups_cannot_be_split(
    keys: list[set[int] | None],
) -> None:
    files = [f"part-{index}.parquet" for index in range(len(keys))]
    digests = [None if ks is None else [groups.key_digest([str(k)]) for k in ks] for ks in keys]
    found = groups.by_keys(files, digests)
    assert sorted(name for group in found for name in group) == sorted(files)  # a partition
    assert [group[0] for group in found] == sorted({g[0] for g in found}, key=files.index)
    where = {name: index for index, group in enumerate(found) for name in group}
    for key in range(13):
        holders = {where[files[i]] for i, ks in enumerate(keys) if ks and key in ks}
        assert len(holders) <= 1, f"key {key} is in several groups"
    for group in found:  # connected: no part of a group shares nothing with the rest
        members = [files.index(name) for name in group]
        reached, frontier = {members[0]}, [members[0]]
        while frontier:
            mine = keys[frontier.pop()] or set()
            for other in members:
                if other not in reached and mine & (keys[other] or set()):
                    reached.add(other)
                    frontier.append(other)
        assert reached == set(members)
    packed = groups.tasks(found, 3)
    assert [group for task in packed for group in task] == found  # in order, none split
    assert all(sum(map(len, task)) <= 3 or len(task) == 1 for task in packed)


def test_files_of_one_name_are_one_group_in_order_of_first_appearance() -> None:
    files = ["d2/web-3.csv", "d1/web-4.parquet", "d1/web-3.csv", "s3://b/d3/web-3.csv.gz"]
    assert groups.by_name(files) == [
        ["d2/web-3.csv", "d1/web-3.csv", "s3://b/d3/web-3.csv.gz"],
        ["d1/web-4.parquet"],
    ]


def expected_sha256(times: np.ndarray, values: np.ndarray) -> str:
    return hashlib.sha256(run_fit(KSigma(PARAMS), times, values).state).hexdigest()


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A long table written as part files by time: hosts a and b in part-0 (day 1) and part-1
    (day 2, rows shuffled), host c alone in part-2; and a part that is not Parquet at all."""
    root = tmp_path_factory.mktemp("batch-parts")
    folder = root / "table"
    folder.mkdir()
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    chunks: dict[str, list[pa.Table]] = {"part-0": [], "part-1": [], "part-2": []}
    for host, key in (("a", 1), ("b", 2), ("c", 3)):
        times, values = sensor(key)
        truth[f"host={host}"] = (times, values)
        halves = (("part-0", slice(0, 1440)), ("part-1", slice(1440, None)))
        for part, rows in halves if host != "c" else (("part-2", slice(None)),):
            order = np.random.default_rng(key).permutation(len(times[rows]))
            columns = {"host": [host] * len(order), "timestamp": times[rows][order]}
            chunks[part].append(pa.table({**columns, "value": values[rows][order]}))
    for part, tables in chunks.items():
        pq.write_table(pa.concat_tables(tables), folder / f"{part}.parquet")
    (folder / "part-3.parquet").write_bytes(b"not parquet at all")
    store, output = root / "store", root / "out"
    run = (
        "fit", str(folder), "--algorithm", "ksigma", "--params", orjson.dumps(PARAMS).decode(),
        "--key-columns", "host", "--store-dir", str(store), "--output", str(output),
        "--workers", "2", "--files-per-task", "1",
    )  # fmt: skip
    first = batch(*run)
    return {"truth": truth, "store": store, "output": output, "first": first, "again": batch(*run)}


def test_a_long_table_in_part_files_is_fitted_series_by_series_whole(
    parts: dict[str, Any],
) -> None:
    """part-0 and part-1 share hosts a and b: one group, one task, so each host's model is the
    one a fit request on all its rows returns; part-2 is a group of its own; the broken part
    fails alone with the reader's message."""
    code, summary, stderr = parts["first"]
    assert code == 1, stderr[-2000:]
    assert "4 files hold 3 groups of whole series (the largest 2 files" in stderr
    assert (summary["files"], summary["series_ok"], summary["series_failed"]) == (4, 3, 1)
    (failure,) = summary["failures"]
    assert failure["file"] == "part-3.parquet" and failure["code"] == "INVALID_INPUT"
    assert "cannot read" in failure["message"] and failure["together_with"] == []
    store = store_of(parts["store"])
    for key, (times, values) in parts["truth"].items():
        pointer = store.pointer(series_id(key))
        assert pointer is not None, key
        assert pointer.sha256 == expected_sha256(times, values), key
        assert len(store.history(series_id(key))) == 1, f"{key} was pushed more than once"
    records = sorted((parts["output"] / "done" / "fit").iterdir())
    names = [path.name.rsplit("-", 1)[0] for path in records]
    assert names == ["part-0_parquet_1", "part-2_parquet", "part-3_parquet"]
    joined = orjson.loads(records[0].read_bytes())
    assert joined["file"] == "part-0.parquet" and joined["together_with"] == ["part-1.parquet"]
    assert sorted(s["key"] for s in joined["series"]) == ["host=a", "host=b"]


def test_a_rerun_finds_every_group_done(parts: dict[str, Any]) -> None:
    code, summary, stderr = parts["again"]
    assert code == 1, stderr[-2000:]  # the broken part is tried again, and fails again
    assert (summary["series_ok"], summary["series_skipped"], summary["series_failed"]) == (0, 3, 1)
    for key in parts["truth"]:
        assert len(store_of(parts["store"]).history(series_id(key))) == 1


def test_one_sensor_in_day_folders_is_one_series(tmp_path: Path) -> None:
    """``day1/sensor.csv`` and ``day2/sensor.csv`` given as two folders: one model fitted on
    both days (not two, the second replacing the first)."""
    times, values = sensor(7)
    for day, rows in (("day2", slice(1440, None)), ("day1", slice(0, 1440))):
        (tmp_path / day).mkdir()
        write_csv(tmp_path / day / "sensor.csv", times[rows], values[rows])
    write_csv(tmp_path / "day1" / "other.csv", times[:1440], values[:1440])
    code, summary, stderr = batch(
        "fit", str(tmp_path / "day2"), str(tmp_path / "day1"), "--algorithm", "ksigma",
        "--params", orjson.dumps(PARAMS).decode(), "--store-dir", str(tmp_path / "store"),
        "--output", str(tmp_path / "out"), "--workers", "1",
    )  # fmt: skip
    assert code == 0, stderr[-2000:]
    assert (summary["files"], summary["series_ok"]) == (3, 2)
    store = store_of(tmp_path / "store")
    pointer = store.pointer(series_id("sensor"))
    assert pointer is not None and pointer.sha256 == expected_sha256(times, values)
    other = store.pointer(series_id("other"))
    assert other is not None and other.sha256 == expected_sha256(times[:1440], values[:1440])

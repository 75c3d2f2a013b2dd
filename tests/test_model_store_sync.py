"""``models sync``: the store's current models into a node's models folder, verified, atomic per
file, a no-op when current, and safe to kill at any point."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces.run_state import load_state
from warden_algos.models_folder import ModelsFolder
from warden_algos.modelstore.records import ModelPointer
from warden_algos.modelstore.store import ModelStore, SeriesId
from warden_algos.modelstore.sync import sync

from .conftest import cli
from .s3_server import FaultyProxy
from .test_model_store import (
    KSIGMA,
    Backend,
    backend,
    fitted,
    flip,
    models,
    models_process,
    one_line_error,
    s3_backend,
    series,
)

__all__ = ["backend"]  # the fixture, shared with test_model_store

PARAMS = KSigma().get_params()


class CountingObjects:
    """The store's backend, counting the objects read (to prove what a sync did not read)."""

    def __init__(self, objects: Any) -> None:
        self.objects = objects
        self.read: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.objects, name)

    def get(self, key: str, limit: int | None = None) -> Any:
        self.read.append(key)
        return self.objects.get(key, limit)


def counting(store: ModelStore) -> tuple[ModelStore, CountingObjects]:
    objects = CountingObjects(store.objects)
    return ModelStore(objects, store.root), objects  # type: ignore[arg-type]


def push_many(store: ModelStore, count: int, generation: int) -> dict[str, bytes]:
    """A model for each of ``count`` series (other bytes for each ``generation``)."""
    blobs = {f"host=node-{i:04d}": fitted(10_000 * generation + i, n=40) for i in range(count)}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: store.push(item[1], item[0], why=f"gen {generation}"),
                      blobs.items()))  # fmt: skip
    return blobs


def local_bytes(dest: Path, key: str) -> bytes | None:
    path = ModelsFolder(dest).path("ksigma", PARAMS, key)
    return path.read_bytes() if path.exists() else None


def test_a_sync_of_current_models_reads_no_blob_and_touches_no_file(
    backend: Backend, tmp_path: Path
) -> None:
    blobs = push_many(backend.store, 20, generation=1)
    dest = tmp_path / "node"
    first = sync(backend.store, dest)
    assert [o.status for o in first] == ["installed"] * 20
    stats = {key: ModelsFolder(dest).path("ksigma", PARAMS, key).stat() for key in blobs}
    store, objects = counting(backend.store)
    again = sync(store, dest)
    assert [o.status for o in again] == ["current"] * 20
    assert objects.read == []  # one listing: no pointer read, no blob downloaded
    for key, before in stats.items():
        after = ModelsFolder(dest).path("ksigma", PARAMS, key).stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    refit = store.push(fitted(7, n=40), "host=node-0003", why="refit one").pointer
    objects.read.clear()
    third = sync(store, dest)
    assert sorted(o.status for o in third) == ["current"] * 19 + ["installed"]
    assert objects.read == [store.pointer_key(SeriesId.of(refit)), store.blob_key(refit.sha256)]
    assert local_bytes(dest, "host=node-0003") == fitted(7, n=40)
    for index in dest.glob(".sync-*.json"):
        index.write_bytes(b"{not json")  # a damaged index costs reads, never a download
    objects.read.clear()
    assert [o.status for o in sync(store, dest)] == ["current"] * 20
    blobs_read = [key for key in objects.read if key.startswith(f"{store.root}blobs/")]
    assert len(objects.read) == 20 and blobs_read == []


def test_a_tampered_blob_is_refused_by_sync_and_the_local_model_stays(
    backend: Backend, tmp_path: Path
) -> None:
    store, dest = backend.store, tmp_path / "node"
    old, new = fitted(1), fitted(2)
    store.push(old, "host=web-1", why="old")
    assert models(backend, "sync", "--dest", str(dest)).returncode == 0
    store.push(new, "host=web-1", why="new")
    flip(store, hashlib.sha256(new).hexdigest())
    done = models(backend, "sync", "--dest", str(dest))
    assert done.returncode == 1
    assert "does not match its sha256 (tampered or damaged): refused" in done.stdout.decode()
    assert local_bytes(dest, "host=web-1") == old
    store.push(new, "host=web-1", why="the same state again")  # repairs the damaged object
    assert [o.status for o in sync(store, dest)] == ["installed"]
    assert local_bytes(dest, "host=web-1") == new


@pytest.mark.parametrize(
    ("planted", "message"),
    [
        (b"\x80\x04\x95 a pickle, or anything but a state", "is not a usable state"),
        (fitted(3, window=30), "not the series it is stored for"),
    ],
    ids=["not-a-state", "other-params"],
)
def test_a_planted_pointer_never_puts_its_blob_in_the_models_folder(
    backend: Backend, tmp_path: Path, planted: bytes, message: str
) -> None:
    store, dest = backend.store, tmp_path / "node"
    good = fitted(1)
    pointer = store.push(good, "host=web-1", why="good").pointer
    sync(store, dest)
    sha256 = hashlib.sha256(planted).hexdigest()
    store.objects.put(store.blob_key(sha256), planted)  # a bucket writer's two objects
    forged = pointer.model_copy(update={"sha256": sha256, "size": len(planted)})
    store.objects.put(store.pointer_key(KSIGMA), orjson.dumps(forged.model_dump()))
    (outcome,) = sync(store, dest)
    assert outcome.status == "failed" and message in str(outcome.error)
    assert local_bytes(dest, "host=web-1") == good


def test_sync_takes_the_series_asked_for_and_names_those_the_store_lacks(
    backend: Backend, tmp_path: Path
) -> None:
    store, dest = backend.store, tmp_path / "node"
    push_many(store, 3, generation=1)
    outcomes = sync(store, dest, series_keys=["host=node-0001", "host=nowhere"])
    assert [(o.status, o.series and o.series.series_key) for o in outcomes] == [
        ("installed", "host=node-0001"),
        ("failed", None),
    ]
    assert "no model of series 'host=nowhere'" in str(outcomes[1].error)
    assert local_bytes(dest, "host=node-0000") is None
    assert sync(store, dest, algorithms=["mad"]) == []
    done = models(backend, "sync", "--dest", str(dest), "--key", "host=nowhere")
    assert done.returncode == 1 and "host=nowhere" in done.stdout.decode()
    assert done.stderr == b""


def test_a_killed_sync_leaves_every_model_usable_and_a_rerun_completes(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    backend = s3_backend(s3_endpoint, prefix)
    store, dest = backend.store, tmp_path / "node"
    count = 60
    old = push_many(store, count, generation=1)
    sync(store, dest)
    new = push_many(store, count, generation=2)
    proxy = FaultyProxy(s3_endpoint, bytes_per_s=20_000)  # ~0.1 s a response
    slow = s3_backend(proxy.endpoint, prefix)
    try:
        process = models_process(slow, "sync", "--dest", str(dest), "--jobs", "2")
        deadline = threading.Event()
        for _ in range(1200):  # until it has replaced a few models (at most 60 s)
            if sum(local_bytes(dest, key) == new[key] for key in new) >= 5:
                break
            deadline.wait(0.05)
        process.kill()
        process.wait()
    finally:
        proxy.close()
    reached = {key for key in new if local_bytes(dest, key) == new[key]}
    assert 5 <= len(reached) < count, "the sync was not cut mid-way"
    for key in new:  # each the old model or the new one, whole: usable as it stands
        assert local_bytes(dest, key) in (old[key], new[key])
    for path in dest.rglob("*.state"):
        if not path.name.startswith("."):
            load_state(KSigma(), path.read_bytes())
    untouched = sorted(set(new) - reached)[0]
    times, values = series(40)
    detect = {"timestamps": (times + 10**6).tolist(), "values": values.tolist(), "model": untouched}
    request = {"interface": "detect", "algorithm": "ksigma", "detect": detect}
    answer = orjson.loads(cli("run", "--models-dir", str(dest), stdin=orjson.dumps(request)).stdout)
    assert answer["status"] == "ok", answer
    rerun = models(backend, "sync", "--dest", str(dest), "--json")
    assert rerun.returncode == 0, one_line_error(rerun)
    summary = orjson.loads(rerun.stdout)
    assert (summary["installed"], summary["current"]) == (count - len(reached), len(reached))
    assert all(local_bytes(dest, key) == new[key] for key in new)


def test_sync_json_lists_each_series_and_its_path(backend: Backend, tmp_path: Path) -> None:
    pushed: ModelPointer = backend.store.push(fitted(1), "host=web-1", why="one").pointer
    done = models(backend, "sync", "--dest", str(tmp_path / "node"), "--json")
    (row,) = orjson.loads(done.stdout)["series"]
    assert row["status"] == "installed" and row["sha256"] == pushed.sha256
    assert Path(row["path"]) == ModelsFolder(tmp_path / "node").path("ksigma", PARAMS, "host=web-1")
    assert SeriesId(row["algorithm"], row["params_id"], row["series_key"]) == KSIGMA

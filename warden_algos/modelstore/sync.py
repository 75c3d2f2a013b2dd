"""Copy the current models of a set of series from the store into a node's models folder.

For each series: if the folder's file already hashes to the pointer's sha256 no blob is read,
and if the pointer's etag is also the one the last sync saw (``sync_index.py``) not even the
pointer is (a no-op sync is one listing). Otherwise the blob is fetched, checked against its
sha256 and decoded as a state of the series' algorithm and params (``ModelStore.fetch``), and
only then installed, in one rename (``ModelsFolder.install``). So a tampered object is refused
and the node keeps the model it had, and a sync killed at any point leaves every file it had
not renamed yet exactly as it was: each is the old model or the new one, never a half. Series
are independent: one that fails is reported and the others go on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, NamedTuple

from warden_algos.models_folder import ModelsFolder, params_id

from .records import ModelPointer
from .store import ModelStore, SeriesId, Unreadable
from .sync_index import Remembered, load_index, save_index
from .training import failure_text


class Synced(NamedTuple):
    series: SeriesId | None  # None for an unreadable pointer (its key is in ``error``)
    status: Literal["installed", "current", "failed"]
    sha256: str | None = None
    path: Path | None = None
    error: str | None = None


def local_sha256(path: Path) -> str | None:
    """The sha256 of the file at ``path`` (never followed if a link), None if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def sync(
    store: ModelStore,
    dest: Path,
    *,
    algorithms: Collection[str] | None = None,
    series_keys: Collection[str] | None = None,
    jobs: int = 8,
) -> list[Synced]:
    """Make ``dest`` hold the store's current model of every series (of ``algorithms``, with
    ``series_keys``, when given); one outcome per series, by algorithm, params id and key. A key
    asked for that has no model in the store is a failure."""
    folder = ModelsFolder(dest)
    identity = store.objects.where(store.root)
    remembered = load_index(dest, identity)
    listed = store.listing(algorithms, series_keys)
    outcomes: list[Synced] = []
    keep: dict[str, Remembered] = {}
    unknown = []
    for key, etag in listed.items():
        entry = remembered.get(key)
        if entry is not None and entry.etag == etag:
            series = SeriesId(entry.algorithm, params_id(entry.params), entry.series_key)
            path = folder.path(entry.algorithm, entry.params, entry.series_key)
            if store.pointer_key(series) == key and local_sha256(path) == entry.sha256:
                outcomes.append(Synced(series, "current", entry.sha256, path))
                keep[key] = entry
                continue
        unknown.append(key)

    def one(item: tuple[ModelPointer, str] | Unreadable) -> tuple[Synced, Remembered | None]:
        if isinstance(item, Unreadable):
            return Synced(None, "failed", error=f"{item.key}: {item.error}"), None
        pointer, etag = item
        series = SeriesId.of(pointer)
        path = folder.path(pointer.algorithm, pointer.params, pointer.series_key)
        try:
            if local_sha256(path) != pointer.sha256:
                blob, _ = store.fetch(series, pointer.sha256)
                folder.install(pointer.algorithm, pointer.params, pointer.series_key, blob)
                status: Literal["installed", "current"] = "installed"
            else:
                status = "current"
        except Exception as error:  # refused, or S3/the disk failed for this one
            return Synced(series, "failed", pointer.sha256, path, failure_text(error)), None
        seen = Remembered(
            etag=etag,
            sha256=pointer.sha256,
            algorithm=pointer.algorithm,
            params=pointer.params,
            series_key=pointer.series_key,
        )
        return Synced(series, status, pointer.sha256, path), seen

    read = store.pointers_at(unknown)
    if len(read) > 1 and jobs > 1:
        with ThreadPoolExecutor(max_workers=min(jobs, len(read))) as pool:
            done = list(pool.map(one, read))
    else:
        done = [one(item) for item in read]
    for outcome, seen in done:
        outcomes.append(outcome)
        if seen is not None and outcome.series is not None:
            keep[store.pointer_key(outcome.series)] = seen
    index = {key: entry for key, entry in remembered.items() if key not in listed} | keep
    if index != remembered:
        save_index(dest, identity, index)
    found = {o.series.series_key for o in outcomes if o.series is not None}
    missing = [
        Synced(None, "failed", error=f"no model of series {key[:200]!r} in the store")
        for key in sorted(set(series_keys or ()) - found)
    ]
    return sorted(outcomes, key=_order) + missing


def _order(outcome: Synced) -> tuple[int, str, str, str]:
    if outcome.series is None:
        return (1, "", "", outcome.error or "")
    return (0, *outcome.series[:3])

"""What the last sync from a store saw, kept beside the models so the next one reads no pointer
that has not moved.

A store's listing gives each pointer's etag without reading it, and a pointer's bytes change on
every move (its generation does), so a pointer whose etag is the one remembered here still names
the model remembered here. When the folder's file also still hashes to that model, the series is
current without a single read: a no-op sync of N series is one listing (a page per 1,000 series
on S3) instead of N pointer reads. Anything else (a moved pointer, a changed or missing file, no
index, an index that does not parse or belongs to another store) falls back to reading the
pointer, so this file can make a sync faster, never wrong. It is written (one rename) only at the
end of a sync: a sync killed mid-way leaves the previous one, which at worst costs reads.

The file lives in the models folder's root as ``.sync-<store id>.json``; a reader of the folder
ignores it (algorithm names never start with a dot).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warden_algos.executable.manifest import Sha256

from .records import ALGORITHM, MAX_SERIES_KEY

FORMAT = 1


class Remembered(BaseModel):
    """A series' pointer as the last sync saw it: its etag and the model it named."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    etag: str = Field(max_length=200)
    sha256: Sha256
    algorithm: str = Field(pattern=ALGORITHM)
    params: dict[str, Any]
    series_key: str = Field(min_length=1, max_length=MAX_SERIES_KEY)


class _Index(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int
    store: str
    pointers: dict[str, Remembered]


def index_path(dest: Path, store: str) -> Path:
    return dest / f".sync-{hashlib.sha256(store.encode()).hexdigest()[:16]}.json"


def load_index(dest: Path, store: str) -> dict[str, Remembered]:
    """Pointer key -> what the last sync from ``store`` into ``dest`` saw; empty when unknown."""
    try:
        fd = os.open(index_path(dest, store), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as file:
            index = _Index.model_validate(orjson.loads(file.read()))
    except (OSError, orjson.JSONDecodeError, ValidationError):
        return {}
    if index.format != FORMAT or index.store != store:
        return {}
    return index.pointers


def save_index(dest: Path, store: str, pointers: dict[str, Remembered]) -> None:
    """Replace the index in one rename (a reader sees the old one or this one)."""
    dest.mkdir(parents=True, exist_ok=True)
    path = index_path(dest, store)
    document = {
        "format": FORMAT,
        "store": store,
        "pointers": {key: entry.model_dump() for key, entry in sorted(pointers.items())},
    }
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with os.fdopen(os.open(temporary, flags, 0o644), "wb") as out:
        out.write(orjson.dumps(document))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)

"""The local-folder backend of the model store: the S3 semantics on one machine, without boto3.

For tests and single machines. Every object is a file written to a temporary name and renamed
into place, so a reader sees the old bytes or the new ones, never a half. A conditional write
is a compare-and-swap under an exclusive ``flock`` on one of ``LOCK_STRIPES`` lock files,
``ROOT/.locks/<xx>``, chosen by the key's hash: it reads the current bytes, checks the condition
(absent, or the etag its caller read, here their sha256) and renames the new bytes in before
releasing the lock, so concurrent writers from any number of threads or processes are refused
exactly as S3 refuses them. Striping is what lets writers of different series (a batch run's
workers) proceed side by side: one lock for the whole store made them wait on each other's
fsync. (Earlier builds of 0.1.0 locked one ``ROOT/.lock``: one of those and a newer one must
not write the same folder store at the same time.)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .objects import Conflict, TooLarge
from .records import ModelStoreError


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Lock files a folder store's conditional writes are spread over (two writers of different
#: keys wait for each other with probability 1/LOCK_STRIPES).
LOCK_STRIPES = 256


class FolderObjects:
    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, key: str) -> str:
        return str(self._path(key)) if key else str(self.root.absolute())

    def check(self, *, writing: bool) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ModelStoreError(f"the model store {self.root} is not a folder")
        if not writing and not self.root.exists():
            raise ModelStoreError(
                f"there is no model store at {self.root} (models push or fit makes one)"
            )

    def _path(self, key: str) -> Path:
        """The file of ``key``; a key with an empty, ``.``-led or absolute part is a bug."""
        parts = key.split("/")
        if any(not part or part.startswith(".") or "\0" in part for part in parts):
            raise ValueError(f"not a model-store key: {key!r}")
        return self.root.joinpath(*parts)

    def get(self, key: str, limit: int | None = None) -> tuple[bytes, str] | None:
        try:
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as file:
            if limit is not None and os.fstat(fd).st_size > limit:
                raise TooLarge(key)
            data = file.read() if limit is None else file.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise TooLarge(key)
        return data, _etag(data)

    def put(
        self, key: str, body: bytes, *, if_match: str | None = None, if_absent: bool = False
    ) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_match is None and not if_absent:
            self._write(path, body)
            return
        with self._locked(key):
            found = self.get(key)
            if if_absent and found is not None:
                raise Conflict(key)
            if if_match is not None and (found is None or found[1] != if_match):
                raise Conflict(key)
            self._write(path, body)

    def keys(self, prefix: str) -> list[str]:
        folder = prefix.rpartition("/")[0]
        base = self._path(folder) if folder else self.root
        keys = []
        for directory, subfolders, files in os.walk(base):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith("."):
                    continue  # the lock, and temporary files of writes under way
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def listing(self, prefix: str) -> dict[str, str]:
        found = {}
        for key in self.keys(prefix):
            got = self.get(key)
            if got is not None:  # not removed meanwhile
                found[key] = got[1]
        return found

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """Exclusive, across threads and processes, against every other writer of ``key``."""
        stripe = hashlib.sha256(key.encode()).digest()[0] % LOCK_STRIPES
        folder = self.root / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{stripe:02x}", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _write(path: Path, body: bytes) -> None:
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary = temporary.with_name(f"{temporary.name}.{uuid.uuid4().hex[:8]}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(temporary, flags, 0o644), "wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

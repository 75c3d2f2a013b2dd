"""The one interface both model-store backends offer: keyed objects with conditional writes.

The store's guarantees (immutable blobs, pointers that never lose a concurrent move) rest on
three operations only, so S3 (``s3.py``) and a local folder (``local.py``) give the same
behaviour by construction: ``put`` with ``if_absent`` (S3's ``If-None-Match: *``) or
``if_match`` (S3's ``If-Match: <etag>``, a compare-and-swap under a lock in a folder) raises
:class:`Conflict` instead of overwriting what another writer changed.
"""

from __future__ import annotations

from typing import Protocol


class Conflict(Exception):
    """A conditional write lost: the object exists (``if_absent``) or changed (``if_match``)."""


class TooLarge(Exception):
    """An object is larger than the reader's limit; it was not read."""


class ObjectStore(Protocol):
    """Keys are ``/``-separated names the store builds from validated parts."""

    def where(self, key: str) -> str:
        """Where ``key`` lives, for messages (``s3://bucket/key``, a path)."""
        ...

    def check(self, *, writing: bool) -> None:
        """Fail early, in one line, when the store cannot be reached at all (or, unless
        ``writing``, does not exist: a mistyped store is not an empty one)."""
        ...

    def get(self, key: str, limit: int | None = None) -> tuple[bytes, str] | None:
        """(bytes, etag), or None when absent; :class:`TooLarge` past ``limit`` bytes."""
        ...

    def put(
        self, key: str, body: bytes, *, if_match: str | None = None, if_absent: bool = False
    ) -> None:
        """Write ``body``; with a condition, :class:`Conflict` when it does not hold."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix`` (a folder-like prefix ending in ``/``)."""
        ...

    def listing(self, prefix: str) -> dict[str, str]:
        """:meth:`keys` with each object's etag (what S3's listing says of each, unread): a
        reader that remembers etags can tell which objects changed without reading them."""
        ...

"""Which input files one task reads together: every file that holds a part of the same series.

A series split over files (one sensor's file in day folders, a long table written as part files)
must be read whole by one task: two tasks each fitting half of it would push two models, the
later silently replacing the other. So the inputs are grouped before anything runs:

- one series per file: files of one name without its suffix (``day=1/web-3.csv`` and
  ``day=2/web-3.csv``) are one series, so one group, and grouping needs no reading;
- a long table (``--key-columns``): each file's keys are read first, by the workers (the driver
  holds one 8-byte digest per key and file, never a row), and files sharing any key are one
  group (connected components).

Groups are independent, so they are what runs in parallel. Part files that each hold every
series (a table partitioned by time, not by key) make a single group that one task reads: the
driver says so on stderr, and partitioning such a table by key restores the parallelism.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

#: Bytes of a key's digest: collisions (two keys taken for one) only merge groups, never split
#: a series, and at 64 bits they are not expected below billions of keys.
KEY_DIGEST_BYTES = 8


def file_stem(source: str) -> str:
    """A file's or object's name without its table suffix: the series key one file holds."""
    from warden_algos.modelstore.tables import file_stem as stem

    return stem(Path(source.rstrip("/")))


def by_name(files: Sequence[str]) -> list[list[str]]:
    """One group per file name (stem), in the order of each name's first file."""
    groups: dict[str, list[str]] = {}
    for source in files:
        groups.setdefault(file_stem(source), []).append(source)
    return list(groups.values())


def key_digest(parts: Sequence[str]) -> bytes:
    joined = "\0".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(joined, digest_size=KEY_DIGEST_BYTES).digest()


def by_keys(files: Sequence[str], keys: Sequence[Sequence[bytes] | None]) -> list[list[str]]:
    """Files sharing a key digest, transitively, as one group (in the order of their first
    file); a file whose keys could not be read (``None``) is a group of its own, to fail there
    with its own error."""
    parent = list(range(len(files)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    owner: dict[bytes, int] = {}
    for index, digests in enumerate(keys):
        for digest in digests or ():
            first = owner.setdefault(digest, index)
            if first != index:
                a, b = root(first), root(index)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[str]] = {}
    for index, source in enumerate(files):
        groups.setdefault(root(index), []).append(source)
    return list(groups.values())


def tasks(groups: Sequence[list[str]], files_per_task: int) -> list[list[list[str]]]:
    """Groups packed into tasks of about ``files_per_task`` files (a group is never split)."""
    packed: list[list[list[str]]] = []
    current: list[list[str]] = []
    size = 0
    for group in groups:
        if current and size + len(group) > files_per_task:
            packed.append(current)
            current, size = [], 0
        current.append(group)
        size += len(group)
    if current:
        packed.append(current)
    return packed

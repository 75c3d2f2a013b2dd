"""Push, read and roll back models: every operation on the model store, over either backend.

Immutability and atomicity come from the backend's conditional writes (``objects.py``), not from
a lock service:

- a state's bytes live under their own sha256, written ``if_absent``; a losing or repeated
  upload can never replace other bytes (a damaged object is rewritten from the bytes its key
  names, the only ones it may hold);
- a series' pointer is written ``if_absent`` (its first model) or ``if_match`` the etag its
  mover read, so of two concurrent moves one wins and the other sees :class:`Conflict`. ``push``
  then re-reads and tries again on top of the winner (a bounded, jittered loop; if the series
  keeps moving it stops with a one-line error telling to retry); ``rollback`` never retries,
  since its target depended on what it read;
- each move's history entry is named by the pointer's generation and written ``if_absent``:
  once by the mover right after the move, and, before any move on top of it, by the next mover
  (a copy of the pointer it replaces), so a mover killed between its two writes loses nothing.

Before a state is pushed it is decoded (``decode_state``) and must name the algorithm and
params it is stored under; a state read back is checked against its sha256 and decoded again,
so a tampered or planted object is refused, never handed on.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, NamedTuple, TypeVar

import orjson
from pydantic import BaseModel

from warden_algos.delivery.errors import ReleaseError
from warden_algos.delivery.store import actor, parse_record
from warden_algos.interfaces.errors import WardenError
from warden_algos.interfaces.state import StateInfo, canonical_params, decode_state, max_state_bytes
from warden_algos.models_folder import key_id, params_id

from .objects import Conflict, ObjectStore, TooLarge
from .records import ALGORITHM, MAX_SERIES_KEY, ModelMove, ModelPointer, ModelStoreError, now

__all__ = ["ModelStore", "Pushed", "SeriesId", "Unreadable"]

_Record = TypeVar("_Record", bound=BaseModel)
#: How often ``push`` re-reads and retries when other pushes to the series keep winning.
PUSH_ATTEMPTS = 60


class SeriesId(NamedTuple):
    """What names a series' model: the algorithm, its params (by id) and the series key."""

    algorithm: str
    params_id: str
    series_key: str

    def __str__(self) -> str:
        return f"{self.algorithm}/{self.params_id} {self.series_key[:200]!r}"

    @classmethod
    def of(cls, pointer: ModelPointer | ModelMove) -> SeriesId:
        return cls(pointer.algorithm, pointer.params_id, pointer.series_key)


class Pushed(NamedTuple):
    pointer: ModelPointer
    move: ModelMove | None  # None: the series already had these bytes, nothing moved


class Unreadable(NamedTuple):
    """A pointer that exists but cannot be used (malformed, or not the series its key names)."""

    key: str
    error: str


def _dumps(record: BaseModel) -> bytes:
    return orjson.dumps(record.model_dump(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _parse(model: type[_Record], raw: bytes, where: str) -> _Record:
    """``parse_record``'s one-line refusal, as this store's error."""
    try:
        return parse_record(model, raw, where)
    except ReleaseError as error:
        raise ModelStoreError(str(error)) from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_series_key(series_key: str) -> str:
    if not 1 <= len(series_key) <= MAX_SERIES_KEY:
        raise ModelStoreError(
            f"a series key is 1 to {MAX_SERIES_KEY} characters (as detect.model), "
            f"got {len(series_key)}"
        )
    return series_key


def describe_state(blob: bytes, what: str) -> StateInfo:
    """What ``blob`` says about itself, if it is a sound state; else a one-line refusal."""
    try:
        info = decode_state(blob).info
    except WardenError as error:
        raise ModelStoreError(f"{what} is not a usable state: {error.code} {error}") from None
    if re.fullmatch(ALGORITHM, info.algorithm) is None:
        raise ModelStoreError(
            f"{what} names no algorithm a registry could hold ({info.algorithm[:80]!r})"
        )
    return info


class ModelStore:
    def __init__(self, objects: ObjectStore, prefix: str = "", *, jobs: int = 8) -> None:
        """``jobs``: how many objects to read at once when listing or reading histories."""
        self.objects = objects
        stripped = prefix.strip("/")
        self.root = f"{stripped}/" if stripped else ""
        self.jobs = max(1, jobs)

    # keys --------------------------------------------------------------------------------
    def blob_key(self, sha256: str) -> str:
        return f"{self.root}blobs/sha256/{sha256}.state"

    def pointer_key(self, series: SeriesId) -> str:
        return (
            f"{self.root}models/{series.algorithm}/{series.params_id}/"
            f"{key_id(series.series_key)}.json"
        )

    def history_prefix(self, series: SeriesId) -> str:
        return (
            f"{self.root}history/{series.algorithm}/{series.params_id}/{key_id(series.series_key)}/"
        )

    def history_key(self, series: SeriesId, generation: int) -> str:
        return f"{self.history_prefix(series)}{generation:012d}.json"

    # reads -------------------------------------------------------------------------------
    def check(self, *, writing: bool = False) -> None:
        """Reachable (S3: the bucket answers), and, unless ``writing``, there (a folder)."""
        self.objects.check(writing=writing)

    def pointer(self, series: SeriesId) -> ModelPointer | None:
        found = self._read_pointer(series)
        return None if found is None else found[0]

    def _read_pointer(self, series: SeriesId) -> tuple[ModelPointer, str] | None:
        key = self.pointer_key(series)
        found = self.objects.get(key)
        if found is None:
            return None
        pointer = _parse(ModelPointer, found[0], self.objects.where(key))
        if SeriesId.of(pointer) != series:
            raise ModelStoreError(
                f"{self.objects.where(key)} holds the pointer of another series "
                f"({SeriesId.of(pointer)}): refused"
            )
        return pointer, found[1]

    def listing(
        self,
        algorithms: Collection[str] | None = None,
        series_keys: Collection[str] | None = None,
    ) -> dict[str, str]:
        """The pointer key and etag of every series (of ``algorithms``, with ``series_keys``,
        when given), from the listing alone: no pointer is read."""
        base = f"{self.root}models/"
        prefixes = [f"{base}{name}/" for name in sorted(set(algorithms))] if algorithms else [base]
        wanted = None if series_keys is None else {key_id(key) for key in series_keys}
        return {
            key: etag
            for prefix in prefixes
            for key, etag in self.objects.listing(prefix).items()
            if _pointer_path(key[len(base) :], wanted)
        }

    def pointers(
        self,
        algorithms: Collection[str] | None = None,
        series_keys: Collection[str] | None = None,
    ) -> list[ModelPointer | Unreadable]:
        """The current model of every series (as :meth:`listing` selects them), by algorithm,
        params id and series key; an unusable pointer as :class:`Unreadable` (one must not hide
        the others)."""
        found = self.pointers_at(self.listing(algorithms, series_keys))
        return sorted(
            (item if isinstance(item, Unreadable) else item[0] for item in found),
            key=_listing_order,
        )

    def pointers_at(self, keys: Iterable[str]) -> list[tuple[ModelPointer, str] | Unreadable]:
        """The pointers (with their etags) at ``keys``, read ``jobs`` at a time."""
        return self._parallel(self._pointer_or_unreadable, keys)

    def _pointer_or_unreadable(self, key: str) -> tuple[ModelPointer, str] | Unreadable | None:
        algorithm, params, name = key.rsplit("/", 3)[-3:]
        try:
            got = self.objects.get(key)
            if got is None:
                return None  # gone between the listing and the read: not a model any more
            pointer = _parse(ModelPointer, got[0], self.objects.where(key))
        except ModelStoreError as error:  # a malformed record
            return Unreadable(key, str(error))
        where = (pointer.algorithm, pointer.params_id, f"{key_id(pointer.series_key)}.json")
        if where != (algorithm, params, name):
            return Unreadable(
                key, f"{self.objects.where(key)} holds the pointer of {SeriesId.of(pointer)}"
            )
        return pointer, got[1]

    def history(self, series: SeriesId) -> list[ModelMove]:
        """Every move of the series, oldest first (generation 1 is its first model)."""
        prefix = self.history_prefix(series)
        keys = [key for key in self.objects.keys(prefix) if _generation(key[len(prefix) :])]
        moves = {move.generation: move for move in self._parallel(self._move_at, keys)}
        current = self.pointer(series)
        if current is not None and current.generation not in moves:
            moves[current.generation] = ModelMove.of(current)  # its mover's second write is due
        return [moves[generation] for generation in sorted(moves)]

    def _move_at(self, key: str) -> ModelMove | None:
        got = self.objects.get(key)
        if got is None:
            return None
        move = _parse(ModelMove, got[0], self.objects.where(key))
        if self.history_key(SeriesId.of(move), move.generation) != key:
            raise ModelStoreError(
                f"{self.objects.where(key)} records a move of another series or generation "
                f"({SeriesId.of(move)}, generation {move.generation}): refused"
            )
        return move

    def fetch(self, series: SeriesId, sha256: str) -> tuple[bytes, StateInfo]:
        """A model's bytes, verified: the object hashes to ``sha256`` and decodes to a state of
        this series' algorithm and params. Anything else is a one-line refusal."""
        name = f"the stored model {sha256[:12]}... of {series}"
        limit = max_state_bytes()
        try:
            found = self.objects.get(self.blob_key(sha256), limit=limit)
        except TooLarge:
            raise ModelStoreError(
                f"{name} is over the state limit of {limit >> 20} MiB (WARDEN_MAX_STATE_MB): "
                "refused"
            ) from None
        if found is None:
            raise ModelStoreError(f"{name} is missing from the store: push the state again")
        blob = found[0]
        if _sha256(blob) != sha256:
            raise ModelStoreError(
                f"{name} does not match its sha256 (tampered or damaged): refused; pushing the "
                "state again repairs it"
            )
        info = describe_state(blob, name)
        if info.algorithm != series.algorithm or params_id(info.params) != series.params_id:
            raise ModelStoreError(
                f"{name} was fitted by {info.algorithm} with params {params_id(info.params)}, "
                "not the series it is stored for: refused"
            )
        return blob, info

    # writes ------------------------------------------------------------------------------
    def push(
        self,
        blob: bytes,
        series_key: str,
        *,
        why: str,
        who: str | None = None,
        algorithm: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Pushed:
        """Make ``blob`` the current model of ``series_key`` under the algorithm and params the
        state names (which must be ``algorithm``/``params`` when given). A no-op when it
        already is; retried on top of concurrent pushes, never overwriting one unrecorded."""
        _say_why(why)
        check_series_key(series_key)
        info = describe_state(blob, "the state")
        if algorithm is not None and info.algorithm != algorithm:
            raise ModelStoreError(
                f"the state was fitted by {info.algorithm!r}, not {algorithm!r}: push it under "
                "its own algorithm"
            )
        if params is not None and canonical_params(params) != info.params:
            raise ModelStoreError(
                f"the state was fitted with other params (id {params_id(info.params)}, not "
                f"{params_id(params)}): push it under the params it was fitted with"
            )
        sha256 = _sha256(blob)
        self._put_blob(sha256, blob)
        series = SeriesId(info.algorithm, params_id(info.params), series_key)
        for attempt in range(PUSH_ATTEMPTS):
            try:
                return self._move(series, sha256, len(blob), info, "push", why, who or actor())
            except Conflict:
                time.sleep(random.uniform(0, min(0.5, 0.002 * 2**attempt)))
        raise ModelStoreError(
            f"the model of {series} kept moving while this push was made ({PUSH_ATTEMPTS} "
            "tries); the pointer was not changed by it: retry"
        )

    def rollback(
        self, series: SeriesId, *, why: str, to: str | None = None, who: str | None = None
    ) -> Pushed:
        """Back to ``to`` (a sha256, or a unique prefix of at least 8 digits, of a model the
        series has had), or to the model the current one replaced when it was pushed (so
        repeated rollbacks walk back through the pushes)."""
        _say_why(why)
        found = self._read_pointer(series)
        if found is None:
            raise ModelStoreError(f"no model for {series}: nothing to roll back")
        current = found[0]
        moves = self.history(series)
        if to is None:
            arrivals = [m for m in moves if m.to_sha256 == current.sha256 and m.action == "push"]
            target = arrivals[-1].from_sha256 if arrivals else None
            if target is None:
                raise ModelStoreError(
                    f"{series} has no earlier model to go back to; name one (--to SHA)"
                )
        else:
            target = known_sha(to, moves, series)
        if target == current.sha256:
            raise ModelStoreError(f"{series} already runs {target[:12]}...")
        blob, info = self.fetch(series, target)
        try:
            return self._move(
                series, target, len(blob), info, "rollback", why, who or actor(), read=found
            )
        except Conflict:
            raise ModelStoreError(
                f"the model of {series} moved while this rollback was being made; nothing was "
                "changed by it: look at the history and retry"
            ) from None

    def _move(
        self,
        series: SeriesId,
        sha256: str,
        size: int,
        info: StateInfo,
        action: Literal["push", "rollback"],
        why: str,
        who: str,
        *,
        read: tuple[ModelPointer, str] | None = None,
    ) -> Pushed:
        """One conditional move of the pointer on top of what was read (now, or ``read``)."""
        current = read if read is not None else self._read_pointer(series)
        if current is not None:
            if action == "push" and current[0].sha256 == sha256:
                return Pushed(current[0], None)
            self._record(current[0])  # its history entry exists before anything replaces it
        pointer = ModelPointer(
            algorithm=series.algorithm,
            params_id=series.params_id,
            params=info.params,
            series_key=series.series_key,
            sha256=sha256,
            size=size,
            state=info,
            generation=1 if current is None else current[0].generation + 1,
            action=action,
            from_sha256=None if current is None else current[0].sha256,
            why=why,
            updated_at=now(),
            updated_by=who,
        )
        key, body = self.pointer_key(series), _dumps(pointer)
        if current is None:
            self.objects.put(key, body, if_absent=True)
        else:
            self.objects.put(key, body, if_match=current[1])
        move = self._record(pointer)
        return Pushed(pointer, move)

    def _record(self, pointer: ModelPointer) -> ModelMove:
        move = ModelMove.of(pointer)
        try:
            key = self.history_key(SeriesId.of(pointer), pointer.generation)
            self.objects.put(key, _dumps(move), if_absent=True)
        except Conflict:
            pass  # recorded already (by its mover, or by a mover on top of it)
        return move

    def _put_blob(self, sha256: str, blob: bytes) -> None:
        key = self.blob_key(sha256)
        try:
            self.objects.put(key, blob, if_absent=True)
        except Conflict:
            try:
                found = self.objects.get(key, limit=len(blob))
            except TooLarge:
                found = None
            if found is None or _sha256(found[0]) != sha256:
                self.objects.put(key, blob)  # damaged: its key says which bytes it must hold

    def _parallel(self, read: Any, keys: Iterable[str]) -> list[Any]:
        keys = list(keys)
        if len(keys) <= 1 or self.jobs == 1:
            results = [read(key) for key in keys]
        else:
            with ThreadPoolExecutor(max_workers=min(self.jobs, len(keys))) as pool:
                results = list(pool.map(read, keys))
        return [result for result in results if result is not None]


def _say_why(why: str) -> None:
    if not why.strip():
        raise ModelStoreError("say why (--why): the history is an audit trail")


def _pointer_path(relative: str, wanted: set[str] | None) -> bool:
    """``<algorithm>/<params id>/<key id>.json``, of a wanted key id if any are named."""
    parts = relative.split("/")
    if len(parts) != 3 or not re.fullmatch(ALGORITHM, parts[0]):
        return False
    if not re.fullmatch(r"[0-9a-f]{16}", parts[1]):
        return False
    name = parts[2].removesuffix(".json")
    if not (parts[2].endswith(".json") and re.fullmatch(r"[0-9a-f]{64}", name)):
        return False
    return wanted is None or name in wanted


def _generation(name: str) -> bool:
    return name.endswith(".json") and name.removesuffix(".json").isdigit() and "/" not in name


def _listing_order(item: ModelPointer | Unreadable) -> tuple[str, ...]:
    if isinstance(item, Unreadable):
        return ("~", item.key)
    return (item.algorithm, item.params_id, item.series_key)


def known_sha(given: str, moves: list[ModelMove], series: SeriesId) -> str:
    """The full sha256 of a model ``series`` has had, from all of it or a unique prefix."""
    text = given.strip().lower()
    known = {m.to_sha256 for m in moves} | {m.from_sha256 for m in moves if m.from_sha256}
    matches = sorted(sha for sha in known if sha.startswith(text))
    if len(text) < 8 or not all(char in "0123456789abcdef" for char in text):
        raise ModelStoreError(f"--to {given!r}: give a sha256 or at least its first 8 hex digits")
    if len(matches) != 1:
        which = "no model" if not matches else f"{len(matches)} models"
        raise ModelStoreError(
            f"--to {given!r} names {which} of {series}'s history (models history lists them)"
        )
    return matches[0]

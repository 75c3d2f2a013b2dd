"""A trained algorithm's state: a typed model like ``Params``, stored as a safe, versioned blob.

An algorithm that can be trained declares ``State``, a subclass of :class:`AlgorithmState` whose
fields are plain values (numbers, strings, booleans, lists and dicts of them, None) and numpy
arrays (:data:`StateArray`). The SDK turns a state into bytes and back; the algorithm never sees
the bytes, and nothing on the way back executes anything:

- the container is `safetensors <https://github.com/huggingface/safetensors>`_: an 8-byte header
  length, a JSON header (each array's dtype, shape and byte range, plus one metadata string),
  then the raw little-endian array bytes. Loading it is a bounds-checked copy (no pickle, no
  marshal, no code), and arrays are limited to :data:`DTYPES`;
- the metadata string is one JSON document (one key, so the bytes are deterministic) that makes
  the blob self-describing: the container format, the algorithm's name and state version, the
  params it was fitted with, the SDK version, the time range and number of points it has seen, the
  plain fields, and ``content_sha256``, a sha256 over everything else (the arrays' names, dtypes,
  shapes and bytes, and the metadata without itself). A blob whose content does not hash to it was
  tampered with or damaged and is refused;
- sizes are checked from the header before any array is materialised: the blob's own length
  (``WARDEN_MAX_STATE_MB``, default 256), the header's length, the number of arrays.

Refusals: undecodable, truncated, oversized and tampered blobs are ``INVALID_INPUT`` (field
``state``); a well-formed state that does not fit the request (another algorithm, other params, a
newer state version or container format, an older one the algorithm cannot migrate) is
``INCOMPATIBLE_STATE``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, NamedTuple

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

from .errors import IncompatibleState, InvalidInput

#: The container's own version: a reader refuses a newer one instead of guessing.
STATE_FORMAT = 1
#: The dtypes a state array may have (safetensors' names): numbers and flags, nothing else.
DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_BY_DTYPE = {dtype: name for name, dtype in DTYPES.items()}
_ITEM_SIZE = {name: dtype.itemsize for name, dtype in DTYPES.items()}
DEFAULT_MAX_STATE_MB = 256
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAYS = 256
_METADATA_KEY = "warden"


def _check_array(value: Any) -> np.ndarray[Any, Any]:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"must be a numpy array, got {type(value).__name__}")
    if value.dtype.newbyteorder("<") not in _BY_DTYPE and value.dtype not in _BY_DTYPE:
        allowed = ", ".join(str(dtype) for dtype in DTYPES.values())
        raise ValueError(f"dtype {value.dtype} is not one a state may hold ({allowed})")
    return value


#: A numpy array field of a state (float64/32, int64/32, uint8 or bool, any shape).
StateArray = Annotated[np.ndarray, PlainValidator(_check_array)]


class AlgorithmState(BaseModel):
    """Base for an algorithm's ``State``: declared fields, immutable, unknown keys refused.

    Field values are plain JSON values or :data:`StateArray` s. A third-party model goes in through
    its own safe format (Prophet's ``model_to_json`` as a ``str`` field), never as an object.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True
    )

    #: Fields holding arrays, found from the annotations (computed once per class).
    _array_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._array_fields = frozenset(
            name
            for name, info in cls.model_fields.items()
            if any(isinstance(m, PlainValidator) for m in info.metadata)
            or info.annotation is np.ndarray
        )


class Seen(NamedTuple):
    """The span of points a state has learnt from: first and last time, and how many."""

    start: int | None
    end: int | None
    points: int

    def then(self, timestamps: np.ndarray[Any, Any]) -> Seen:
        """The span after also seeing ``timestamps`` (increasing, after ``end``)."""
        if timestamps.shape[0] == 0:
            return self
        start = self.start if self.start is not None else int(timestamps[0])
        return Seen(start, int(timestamps[-1]), self.points + int(timestamps.shape[0]))


class StateInfo(BaseModel):
    """What a blob says about itself (``describe`` of a state, the model store's listings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    format: int
    algorithm: str
    state_version: int
    params: dict[str, Any]
    sdk_version: str
    seen_start: int | None
    seen_end: int | None
    seen_points: int
    content_sha256: str

    @property
    def seen(self) -> Seen:
        return Seen(self.seen_start, self.seen_end, self.seen_points)


class DecodedState(NamedTuple):
    info: StateInfo
    fields: dict[str, Any]  # plain fields and arrays, before the algorithm's State validates them
    blob_sha256: str  # of the whole blob: what caches and stores name it by
    #: The alerting stage's part (``alerting.py``), unchecked, when the stream used the stage.
    alerting: dict[str, Any] | None = None


#: Arrays of the alerting stage's part are named with this prefix (a "." is in no field name).
ALERTING_PREFIX = "alerting."


def max_state_bytes() -> int:
    raw = os.environ.get("WARDEN_MAX_STATE_MB", "").strip()
    try:
        return int(float(raw) * (1 << 20)) if raw else DEFAULT_MAX_STATE_MB << 20
    except ValueError:
        raise InvalidInput(f"WARDEN_MAX_STATE_MB={raw!r} is not a number") from None


def canonical_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params as the state records them: their JSON form, so equal params compare equal.
    ``alerting`` (the stage's block: absent, or an object) is left out: the stage after a
    detector is not part of its model, so a state serves with the stage or without it, at any
    sensitivity."""
    model = {
        key: value
        for key, value in params.items()
        if not (key == "alerting" and (value is None or isinstance(value, Mapping)))
    }
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(model, option=orjson.OPT_SORT_KEYS))
    return loaded


class _ArrayBytes(NamedTuple):
    """An array as a state blob holds it: safetensors dtype name, shape, little-endian bytes."""

    dtype: str
    shape: list[int]
    data: memoryview


def _array_bytes(array: np.ndarray[Any, Any]) -> _ArrayBytes:
    """``array``'s bytes, little-endian and C-contiguous (copied only when it is not), as a
    flat view: hashed and written from the same view, never copied for either."""
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    flat = memoryview(array.reshape(-1)).cast("B")  # type: ignore[arg-type]
    return _ArrayBytes(_BY_DTYPE[array.dtype], list(array.shape), flat)


def _content_sha256(meta: Mapping[str, Any], arrays: Mapping[str, _ArrayBytes]) -> str:
    """sha256 of the description and every array (name, dtype, shape, bytes), in name order."""
    digest = hashlib.sha256(orjson.dumps(dict(meta), option=orjson.OPT_SORT_KEYS))
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(orjson.dumps([name, array.dtype, array.shape]))
        digest.update(array.data)
    return digest.hexdigest()


def encode_state(
    algorithm: str,
    state_version: int,
    params: Mapping[str, Any],
    state: AlgorithmState,
    seen: Seen,
) -> bytes:
    """The blob of ``state``. Deterministic: the same state gives the same bytes."""
    return encode_described(algorithm, state_version, params, state, seen)[0]


def encode_described(
    algorithm: str,
    state_version: int,
    params: Mapping[str, Any],
    state: AlgorithmState,
    seen: Seen,
    *,
    canonical: bool = False,
    alerting: AlgorithmState | None = None,
) -> tuple[bytes, StateInfo]:
    """The blob of ``state`` and what it says about itself (without decoding it again).
    ``canonical``: ``params`` already are ``canonical_params``' output (not converted again).
    ``alerting``: the alerting stage's state, stored beside the algorithm's."""
    from warden_algos import __version__

    arrays: dict[str, _ArrayBytes] = {}
    plain = _split_fields(state, arrays, "")
    meta: dict[str, Any] = {
        "format": STATE_FORMAT,
        "algorithm": algorithm,
        "state_version": state_version,
        "params": dict(params) if canonical else canonical_params(params),
        "sdk_version": __version__,
        "seen_start": seen.start,
        "seen_end": seen.end,
        "seen_points": seen.points,
        "fields": plain,
    }
    if alerting is not None:
        meta["alerting"] = _split_fields(alerting, arrays, ALERTING_PREFIX)
    meta["content_sha256"] = _content_sha256(meta, arrays)
    text = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()
    del meta["fields"]
    meta.pop("alerting", None)
    return _safetensors_bytes(arrays, text), StateInfo.model_construct(**meta)


def _split_fields(
    state: AlgorithmState, arrays: dict[str, _ArrayBytes], prefix: str
) -> dict[str, Any]:
    """``state``'s plain fields; its arrays go into ``arrays``, named ``prefix`` + field."""
    plain: dict[str, Any] = {}
    for name in type(state).model_fields:
        value = getattr(state, name)
        if isinstance(value, np.ndarray):
            arrays[prefix + name] = _array_bytes(value)
        else:
            plain[name] = value
    return plain


def _safetensors_bytes(arrays: Mapping[str, _ArrayBytes], metadata: str) -> bytes:
    """The safetensors container of ``arrays``, written directly (the format is a length, a JSON
    header and the arrays' bytes back to back): the library's writer spends most of a small
    state's encoding time on per-array dtype checks. Reading always goes through safetensors'
    own loader, which checks every offset; tests load every state this writes with it.

    Arrays are laid out largest item size first, then by name, so no array starts unaligned;
    the header is padded with spaces to a multiple of 8 bytes, as safetensors pads it. Each
    array's bytes are copied once, into the blob."""
    header: dict[str, Any] = {"__metadata__": {_METADATA_KEY: metadata}}
    parts: list[memoryview] = []
    offset = 0
    for name in sorted(arrays, key=lambda key: (-_ITEM_SIZE[arrays[key].dtype], key)):
        array = arrays[name]
        data = array.data
        header[name] = {
            "dtype": array.dtype,
            "shape": array.shape,
            "data_offsets": [offset, offset + data.nbytes],
        }
        parts.append(data)
        offset += data.nbytes
    text = orjson.dumps(header)
    text += b" " * (-len(text) % 8)
    return b"".join([len(text).to_bytes(8, "little"), text, *parts])


def decode_state(blob: bytes) -> DecodedState:
    """The blob's description and fields, checked (size, container, content hash) but not yet
    matched to an algorithm: :func:`load_state` does that."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    limit = max_state_bytes()
    if len(blob) > limit:
        raise InvalidInput(
            f"the state is {len(blob) / (1 << 20):,.1f} MiB, over the limit of "
            f"{limit / (1 << 20):,.0f} MiB (WARDEN_MAX_STATE_MB)",
            field="state",
        )
    header = _header(blob)
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or set(meta) != {_METADATA_KEY}:
        raise InvalidInput("not a warden-algos state (no warden metadata)", field="state")
    if len(header) > MAX_ARRAYS:
        raise InvalidInput(f"the state holds over {MAX_ARRAYS} arrays", field="state")
    try:
        described = orjson.loads(meta[_METADATA_KEY])
        fields = described.pop("fields")
        alerting = described.pop("alerting", None)
        claimed = described.get("content_sha256")
        info = StateInfo.model_validate(described)
    except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError, ValidationError):
        raise InvalidInput("the state's description is malformed", field="state") from None
    if info.format > STATE_FORMAT:
        raise IncompatibleState(
            f"the state's container format {info.format} is newer than this SDK's "
            f"({STATE_FORMAT}): fit it again with this version, or upgrade",
            field="state",
        )
    if not isinstance(fields, dict) or not (alerting is None or isinstance(alerting, dict)):
        raise InvalidInput("the state's fields are malformed", field="state")
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in DTYPES:
            raise InvalidInput(
                f"state array {str(name)[:80]!r} has a dtype a state may not hold", field="state"
            )
    try:
        arrays = load(blob)
    except (SafetensorError, ValueError, TypeError) as error:
        raise InvalidInput(f"the state's arrays cannot be read: {error}", field="state") from None
    described_meta = {**described, "fields": fields}
    if alerting is not None:
        described_meta["alerting"] = alerting
    described_meta.pop("content_sha256", None)
    actual = _content_sha256(
        described_meta, {name: _array_bytes(array) for name, array in arrays.items()}
    )
    if actual != claimed:
        raise InvalidInput(
            "the state's content does not match its sha256 (tampered or damaged): refit, or "
            "send the state as it was returned",
            field="state",
        )
    for array in arrays.values():
        array.flags.writeable = False
    staged = {
        name[len(ALERTING_PREFIX) :]: arrays.pop(name)
        for name in list(arrays)
        if name.startswith(ALERTING_PREFIX)
    }
    if staged and alerting is None:
        raise InvalidInput("the state has alerting arrays but no alerting part", field="state")
    for given, more in ((fields, arrays), (alerting or {}, staged)):
        clash = set(given) & set(more)
        if clash:
            raise InvalidInput(f"state field {sorted(clash)[0]!r} is given twice", field="state")
    return DecodedState(
        info,
        {**fields, **arrays},
        hashlib.sha256(blob).hexdigest(),
        None if alerting is None else {**alerting, **staged},
    )


def _header(blob: bytes) -> dict[str, Any]:
    if len(blob) < 8:
        raise InvalidInput("the state is truncated (no header)", field="state")
    length = int.from_bytes(blob[:8], "little")
    if length > MAX_HEADER_BYTES or 8 + length > len(blob):
        raise InvalidInput(
            "the state is truncated or not a state (its header length is past its end)",
            field="state",
        )
    try:
        header = orjson.loads(blob[8 : 8 + length])
    except orjson.JSONDecodeError:
        raise InvalidInput("the state's header is not JSON: not a state", field="state") from None
    if not isinstance(header, dict):
        raise InvalidInput("the state's header is not an object: not a state", field="state")
    return header


def matched_state(
    decoded: DecodedState,
    state_model: type[AlgorithmState],
    algorithm: str,
    state_version: int,
    params: Mapping[str, Any],
    migrate: Any = None,
) -> AlgorithmState:
    """The decoded state as ``state_model``, if it belongs to this algorithm, these params and a
    version this algorithm reads (``migrate(version, fields) -> fields`` upgrades older ones)."""
    info = decoded.info
    if info.algorithm != algorithm:
        raise IncompatibleState(
            f"the state was fitted by {info.algorithm!r}, not {algorithm!r}", field="state"
        )
    if info.params != canonical_params(params):
        differing = sorted(
            key
            for key in set(info.params) | set(canonical_params(params))
            if info.params.get(key) != canonical_params(params).get(key)
        )
        raise IncompatibleState(
            f"the state was fitted with other params ({', '.join(differing)} differ): send the "
            "params it was fitted with, or fit again",
            field="state",
        )
    fields = decoded.fields
    if info.state_version > state_version:
        raise IncompatibleState(
            f"the state is version {info.state_version} of {algorithm}'s state, newer than this "
            f"installation's {state_version}: upgrade, or fit again",
            field="state",
        )
    if info.state_version < state_version:
        if migrate is None:
            raise IncompatibleState(
                f"the state is version {info.state_version} of {algorithm}'s state; this "
                f"installation reads version {state_version} only: fit again",
                field="state",
            )
        fields = migrate(info.state_version, dict(fields))
    try:
        return state_model.model_validate(fields)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise IncompatibleState(
            f"the state does not fit {algorithm}'s state model: {where}: {first['msg']}",
            field="state",
        ) from None

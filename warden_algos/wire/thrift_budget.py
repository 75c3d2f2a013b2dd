"""What a Thrift request will take in memory once decoded, known before the C reader allocates.

The request-size limit counts bytes, and a Thrift message amplifies: an empty ``TimeSeries`` in
``rca.related_metrics`` is one byte on the wire (its stop byte) and, decoded and converted, some
750 bytes in memory; a small compact varint in a ``list<i64>`` is one byte that becomes a Python
int, its list slot and a numpy cell (48 bytes). The C reader (``fastbinary``) materialises the whole
message in one call and only bounds each container by the message's length, so 4 million tiny
related metrics drove a process to 8 GB before validation saw the first one.

:func:`check_thrift_decode_budget` walks the message's structure instead (field headers, struct
nesting, list/set/map headers, string lengths), in pure Python and without building anything,
and sums what each decoded element costs. It is cheap where it has to be:

- a container declares its element count up front, so a list's elements are charged at its header
  and a list that alone exceeds the budget is refused there, after reading a few bytes;
- numeric lists are stepped over without per-element work (fixed-width elements: ``count * width``;
  compact varints: their terminating bytes counted with numpy, a megabyte at a time), and packed
  ``*_packed`` arrays are one length read;
- a run of identical struct or string elements (the cheap way to write millions of them) is
  stepped over with a few ``bytes.startswith`` comparisons, and the walk stops as soon as the
  running estimate is over the budget;
- a message so short that even its worst case fits the budget, and too short to hold a list the
  contract bounds by count over its bound (``rca.graph``: an edge takes a byte at least, so
  ``MAX_EDGES`` bytes), is not walked at all. A message above 100,000 bytes is walked for that
  bound alone: microseconds for lists of numbers, some 5 to 10 us per struct otherwise (2,000
  related metrics of 20 points: 10 ms binary, 21 ms compact, against 19 and 33 ms to decode).

The walk also refuses a bounded list over its bound at the list's header, with the codec's own
error (``rca.graph``: more than ``MAX_EDGES`` edges), before the reader builds a single element.

The walk mirrors the C reader: where the bytes are malformed in a way the reader must also fail on
(truncated, a length past the end, an unknown type code), the walk stops and the reader reports it
with its usual message; nesting deeper than the reader's own limit is refused outright. Fields this
executable does not know are charged as if they were read, although the reader skips them: that
bounds the walk's own time by the budget too.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from warden_algos.interfaces import InvalidInput
from warden_algos.interfaces.budget import current_budget
from warden_algos.interfaces.graph import MAX_EDGES, check_edge_count

from .warden_wire import ttypes as wire

#: What decoding costs, measured by decoding (``ThriftCompactCodec().decode_request`` and the
#: binary twin: the C reader, then the conversion to our types) requests that each repeat one
#: element a million or ten million times, in a fresh process, as the growth of ``ru_maxrss``:
#:
#: - a related metric ``{times: [], values: []}`` (a ``wire.TimeSeries``, then our ``TimeSeries``
#:   with its two empty numpy arrays): 735 B; an empty struct, never converted: 120 B.
#:   BYTES_PER_STRUCT is the near-empty metric rounded up, charged per struct whatever it holds
#:   (its lists are charged on top, so that metric is estimated at 1,260 B: 1.7x, as the JSON
#:   check estimates a tiny metric at 2x);
#: - each further empty list field (``sizes=[]``, ``variances=[]``): 225 B (a list, then its numpy
#:   array); an empty ``dimensions`` map: 65 B. BYTES_PER_CONTAINER covers either;
#: - a ``list<i64>`` element (values past the small-int cache) and a ``list<double>`` element: 48 B
#:   in both protocols (a Python int or float, its list slot, its numpy cell);
#: - a 2-character string in ``detect.dimensions``: 80 B (a str, its slot, the copy's slot); a
#:   text string then costs up to 4 bytes per wire byte (UTF-8 to str: one astral character makes
#:   every character 4 bytes), a binary one (the packed arrays) 1: a 10M-point packed request grew
#:   by exactly its packed bytes (numpy views the bytes object, no copy);
#: - a ``dimensions`` entry: 189 B with two 8-character strings in a 1M-entry map, 386 B for the
#:   only entry of a map (the dict's table and its copy); BYTES_PER_MAP_ENTRY is what is left once
#:   the two strings are charged.
BYTES_PER_STRUCT = 800
BYTES_PER_CONTAINER = 230
BYTES_PER_NUMBER = 48
BYTES_PER_STRING = 80
TEXT_BYTES_PER_BYTE = 4
BINARY_BYTES_PER_BYTE = 1
BYTES_PER_MAP_ENTRY = 100

#: ``params_json`` is parsed by orjson: charged as the JSON check charges a whole JSON request
#: (``json_codec.BYTES_PER_VALUE`` per comma, ``BYTES_PER_OBJECT`` per brace; repeated here so a
#: Thrift run does not import the JSON codec; a test keeps them equal).
JSON_BYTES_PER_VALUE = 60
JSON_BYTES_PER_OBJECT = 1_500

#: The most one wire byte can cost: an empty struct in a list is one byte (its stop byte), and
#: valid JSON spends at least two bytes per object ("{}"). A message of n bytes costs at most n
#: times this, so one that short is not walked (all under ~2.6 MiB at the default budget).
WORST_BYTES_PER_WIRE_BYTE = max(
    BYTES_PER_STRUCT, (JSON_BYTES_PER_VALUE + JSON_BYTES_PER_OBJECT + 1) // 2
)

#: Lists whose length the contract bounds, by (struct, field): each one's count is checked at
#: its header, before the reader allocates a single element, by a function that raises
#: ``InvalidInput`` naming the field (the codec's own check, so both say the same).
_COUNTED: dict[tuple[type, str], Callable[[int], None]] = {
    (wire.RcaPayload, "graph"): check_edge_count,
}
#: An element takes a byte at least (an empty struct is its stop byte): a message this short
#: cannot hold a bounded list over its bound, so it is not walked for the bounds' sake either.
MOST_COUNTED = MAX_EDGES

#: The C reader refuses a message nested deeper than this (structs and containers; TProtocol's
#: DEFAULT_RECURSION_DEPTH); the walk refuses it too, without recursing further.
MAX_DEPTH = 64

#: Compact varints are located a chunk at a time (their terminating bytes, under 0x80, counted):
#: a mask of one byte per input byte, so at most 1 MiB of scratch whatever the list's size.
_VARINT_CHUNK = 1 << 20
#: Runs of identical elements are compared in blocks of up to this many bytes.
_RUN_BLOCK = 1 << 20
#: Lists of up to this many varints are stepped over in Python (a numpy call costs microseconds).
_FEW = 16
#: Strings are walked in batches of this many between checks for a run of copies.
_STRING_BATCH = 4096
_BE_I32 = struct.Struct(">i")
_BE_I16 = struct.Struct(">h")

# TType codes (thrift.Thrift.TType), the binary protocol's type bytes.
_BOOL, _BYTE, _DOUBLE, _I16, _I32, _I64 = 2, 3, 4, 6, 8, 10
_STRING, _STRUCT, _MAP, _SET, _LIST, _UUID = 11, 12, 13, 14, 15, 16
_SCALARS = frozenset((_BOOL, _BYTE, _DOUBLE, _I16, _I32, _I64))
_VARINTS = {_I16: 3, _I32: 5, _I64: 10}  # compact: a varint's most bytes for each type
_KNOWN = frozenset((*_SCALARS, _STRING, _STRUCT, _MAP, _SET, _LIST, _UUID))
#: compact type nibble -> TType (0 is STOP; 14 and 15 make the reader fail)
_COMPACT_TYPES = {
    0: 0,
    1: _BOOL,
    2: _BOOL,
    3: _BYTE,
    4: _I16,
    5: _I32,
    6: _I64,
    7: _DOUBLE,
    8: _STRING,
    9: _LIST,
    10: _SET,
    11: _MAP,
    12: _STRUCT,
    13: _UUID,
}
#: bytes a value takes at least: (binary, compact)
_MIN_SIZE = {
    _BOOL: (1, 1),
    _BYTE: (1, 1),
    _I16: (2, 1),
    _I32: (4, 1),
    _I64: (8, 1),
    _DOUBLE: (8, 8),
    _STRING: (4, 1),
    _STRUCT: (1, 1),
    _MAP: (6, 1),
    _SET: (5, 1),
    _LIST: (5, 1),
    _UUID: (16, 16),
}
_FIXED_BINARY = {_BOOL: 1, _BYTE: 1, _I16: 2, _I32: 4, _I64: 8, _DOUBLE: 8, _UUID: 16}
_FIXED_COMPACT = {_BOOL: 1, _BYTE: 1, _DOUBLE: 8, _UUID: 16}
#: what one decoded value costs before its contents (elements, characters)
_BASE = {
    **dict.fromkeys(_SCALARS, BYTES_PER_NUMBER),
    _STRING: BYTES_PER_STRING,
    _UUID: BYTES_PER_STRING,
    _STRUCT: BYTES_PER_STRUCT,
    _MAP: BYTES_PER_CONTAINER,
    _SET: BYTES_PER_CONTAINER,
    _LIST: BYTES_PER_CONTAINER,
}

# A field's or element's expected type, from the generated thrift_spec: (TType, details) where
# details is, for a struct, {field id: type}; for a list or set, (its element's type, the check of
# its count or None: _COUNTED); for a map, (key type, value type); for a string, its cost per byte
# and whether it holds JSON.
_Type = tuple[int, Any]
_Schema = dict[int, _Type]
_TEXT: _Type = (_STRING, (TEXT_BYTES_PER_BYTE, False))
_JSON_FIELDS = {"params_json"}


def _type_from_spec(ttype: int, args: Any, name: str = "", owner: type | None = None) -> _Type:
    """The expected type of field ``name`` of struct ``owner`` (or of an element: neither)."""
    if ttype == _STRUCT:
        return (_STRUCT, _schema(args[1], args[0]))
    if ttype in (_LIST, _SET):
        check_count = None if owner is None else _COUNTED.get((owner, name))
        return (ttype, (_type_from_spec(args[0], args[1]), check_count))
    if ttype == _MAP:
        return (_MAP, (_type_from_spec(args[0], args[1]), _type_from_spec(args[2], args[3])))
    if ttype == _STRING:
        per_byte = BINARY_BYTES_PER_BYTE if args == "BINARY" else TEXT_BYTES_PER_BYTE
        return (_STRING, (per_byte, name in _JSON_FIELDS))
    return (ttype, None)


def _schema(spec: Any, owner: type) -> _Schema:
    return {
        item[0]: _type_from_spec(item[1], item[3], item[2], owner)
        for item in spec
        if item is not None
    }


# thrift_spec is assigned after each generated class, out of mypy's sight
_REQUEST: _Schema = _schema(wire.Request.thrift_spec, wire.Request)  # type: ignore[attr-defined]


class _Stop(Exception):
    """The bytes are malformed where the C reader fails too: leave it to the reader's message."""


class _Over(Exception):
    """The running estimate is over the budget."""


class _TooDeep(Exception):
    """Nested deeper than the reader allows."""


class _Walk:
    """One pass over one message; ``pos`` only moves forward, so it always ends."""

    def __init__(self, data: bytes | bytearray, budget: int, compact: bool) -> None:
        self.data = data
        self.end = len(data)
        self.pos = 0
        self.budget = budget
        self.compact = compact
        self.side = 1 if compact else 0
        self.cost = 0
        self.elements = 0
        self.structs = 0

    # -- accounting -----------------------------------------------------------------------------

    def charge(self, amount: int) -> None:
        self.cost += amount
        if self.cost > self.budget:
            raise _Over

    def skip(self, size: int) -> None:
        if size > self.end - self.pos:
            raise _Stop  # past the end: the reader fails here too
        self.pos += size

    # -- primitives (binary or compact) ---------------------------------------------------------

    def varint(self, most: int, bits: int) -> int:
        """An unsigned varint as the C reader reads it: at most ``most`` bytes, the value cut to
        ``bits`` bits (a longer one fails the reader too)."""
        data, pos = self.data, self.pos
        value = shift = 0
        for _ in range(most):
            byte = data[pos]  # IndexError past the end: the reader fails there too
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return value & ((1 << bits) - 1)
            shift += 7
        raise _Stop

    def length(self) -> int:
        """A string's length or a container's size, refused where the reader refuses it: negative
        (as an int32) or past the end of the message."""
        if self.compact:
            size = self.varint(5, 32)
        else:
            size = _BE_I32.unpack_from(self.data, self.pos)[0]  # struct.error past the end
            self.pos += 4
        if size >= 1 << 31 or size < 0 or size > self.end:
            raise _Stop
        return int(size)

    def list_header(self) -> tuple[int, int]:
        byte = self.data[self.pos]
        self.pos += 1
        if not self.compact:
            return byte, self.length()
        etype = _COMPACT_TYPES.get(byte & 0x0F)
        if etype is None:
            raise _Stop
        size = byte >> 4
        return etype, self.length() if size == 15 else size

    def map_header(self) -> tuple[int, int, int]:
        if not self.compact:
            ktype, vtype = self.data[self.pos], self.data[self.pos + 1]
            self.pos += 2
            return ktype, vtype, self.length()
        size = self.length()
        if size == 0:
            return 0, 0, 0
        byte = self.data[self.pos]
        self.pos += 1
        key, item = _COMPACT_TYPES.get(byte >> 4), _COMPACT_TYPES.get(byte & 0x0F)
        if key is None or item is None:
            raise _Stop
        return key, item, size

    def skip_scalars(self, ttype: int, count: int) -> None:
        """Step over ``count`` scalars with no per-element Python work."""
        fixed = (_FIXED_COMPACT if self.compact else _FIXED_BINARY).get(ttype)
        if fixed is not None:
            self.skip(fixed * count)
        else:
            self.skip_varints(count, _VARINTS[ttype])

    def skip_varints(self, count: int, most: int) -> None:
        """Step over ``count`` compact varints: each ends at its first byte under 0x80."""
        data, pos, end = self.data, self.pos, self.end
        if count <= _FEW:  # a numpy call costs microseconds: not for a handful
            for _ in range(count):
                for _ in range(most):
                    byte = data[pos]
                    pos += 1
                    if byte < 0x80:
                        break
                else:
                    raise _Stop  # longer than the reader accepts
            self.pos = pos
            return
        per_varint = 1.0  # bytes per varint so far: the next chunk is sized to what is left
        while count:
            size = min(end - pos, _VARINT_CHUNK, count * most, int(count * per_varint * 1.05) + 64)
            if size <= 0:
                raise _Stop
            ends = np.frombuffer(data, np.uint8, size, pos) < 0x80
            found = int(np.count_nonzero(ends))
            if found >= count:
                pos += _nth_true(ends, count)
                break
            per_varint = max(per_varint, size / found if found else most)
            count -= found
            pos += size
        self.pos = pos

    def skip_scalar_pairs(self, ktype: int, vtype: int, count: int) -> None:
        """Compact map entries of a varint and a fixed-width scalar (or the reverse)."""
        data, pos = self.data, self.pos
        widths = [(_FIXED_COMPACT.get(ttype), _VARINTS.get(ttype, 0)) for ttype in (ktype, vtype)]
        for _ in range(count):
            for fixed, most in widths:
                if fixed is not None:
                    pos += fixed
                    continue
                for _ in range(most):
                    byte = data[pos]
                    pos += 1
                    if byte < 0x80:
                        break
                else:
                    raise _Stop
        if pos > self.end:
            raise _Stop
        self.pos = pos

    # -- values ---------------------------------------------------------------------------------

    def request(self) -> None:
        """The whole message: one ``Request`` struct."""
        self.structs += 1
        self.charge(BYTES_PER_STRUCT)
        self.struct(_REQUEST, 1)

    def value(self, ttype: int, expected: _Type | None, depth: int) -> None:
        """Walk one value whose base cost (``_BASE``) is already charged: charge its contents."""
        if ttype in _SCALARS:
            if ttype == _BOOL and self.compact:
                self.skip(1)  # a bool list element (a bool field's value is in its header)
            else:
                self.skip_scalars(ttype, 1)
        elif ttype == _STRING:
            size = self.length()
            if size > self.end - self.pos:
                raise _Stop
            per_byte, is_json = expected[1] if expected is not None else _TEXT[1]
            extra = per_byte * size
            if is_json:
                start, stop = self.pos, self.pos + size
                values = self.data.count(b",", start, stop) + 1
                objects = self.data.count(b"{", start, stop)
                extra += JSON_BYTES_PER_VALUE * values + JSON_BYTES_PER_OBJECT * objects
            self.pos += size
            self.charge(extra)
        elif ttype == _STRUCT:
            self.struct(expected[1] if expected is not None else None, depth)
        elif ttype in (_LIST, _SET):
            self.container(expected, depth)
        elif ttype == _MAP:
            self.map(expected, depth)
        elif ttype == _UUID:
            self.skip(16)
        else:
            raise _Stop  # an unknown type code: the reader cannot skip it either

    def struct(self, schema: _Schema | None, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep
        data, compact = self.data, self.compact
        last = 0
        while True:
            byte = data[self.pos]
            self.pos += 1
            if compact:
                ttype = _COMPACT_TYPES.get(byte & 0x0F)
                if ttype is None:
                    raise _Stop
                if ttype == 0:
                    return
                delta = byte >> 4
                if delta:
                    tag = ((last + delta + 0x8000) & 0xFFFF) - 0x8000
                else:
                    zigzag = self.varint(3, 16)
                    tag = (zigzag >> 1) ^ -(zigzag & 1)
                last = tag
                if ttype == _BOOL:
                    continue  # the value is the header's type nibble
            else:
                ttype = byte
                if ttype == 0:
                    return
                tag = _BE_I16.unpack_from(data, self.pos)[0]  # struct.error past the end
                self.pos += 2
            if ttype not in _KNOWN:
                raise _Stop
            expected = schema.get(tag) if schema is not None else None
            if expected is not None and expected[0] != ttype:
                expected = None  # the reader skips a field of the wrong type
            if ttype in (_LIST, _SET):  # inlined: most fields are lists of numbers
                if depth >= MAX_DEPTH:
                    raise _TooDeep
                self.cost += BYTES_PER_CONTAINER
                etype, count = self.list_header()
                if count:
                    self.list_body(etype, count, expected, depth + 1)
                elif self.cost > self.budget:
                    raise _Over
                continue
            if ttype == _STRUCT:
                self.structs += 1
            self.charge(_BASE[ttype])
            self.value(ttype, expected, depth + 1)

    def container(self, expected: _Type | None, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep
        etype, count = self.list_header()
        if count:
            self.list_body(etype, count, expected, depth)

    def list_body(self, etype: int, count: int, expected: _Type | None, depth: int) -> None:
        """The ``count`` elements of a list or set at ``depth``, after its header."""
        if etype not in _KNOWN or count * _MIN_SIZE[etype][self.side] > self.end - self.pos:
            raise _Stop  # the reader fails on the element type or runs out of bytes
        element, check_count = expected[1] if expected is not None else (None, None)
        if element is not None and element[0] != etype:
            element = check_count = None
        if check_count is not None:
            check_count(count)  # a bounded list over its bound: refused before its elements
        if etype == _STRUCT:
            self.structs += count
        else:
            self.elements += count
        self.charge(_BASE[etype] * count)
        if etype in _SCALARS:
            self.skip_scalars(etype, count)
        elif etype == _UUID:
            self.skip(16 * count)
        elif etype == _STRING:
            self.strings(count, (element or _TEXT)[1][0])
        else:
            self.elements_of(etype, element, count, depth + 1)

    def map(self, expected: _Type | None, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _TooDeep
        ktype, vtype, count = self.map_header()
        if count == 0:
            return
        if (
            ktype not in _KNOWN
            or vtype not in _KNOWN
            or count * (_MIN_SIZE[ktype][self.side] + _MIN_SIZE[vtype][self.side])
            > self.end - self.pos
        ):
            raise _Stop
        key, item = expected[1] if expected is not None else (None, None)
        key = key if key is not None and key[0] == ktype else None
        item = item if item is not None and item[0] == vtype else None
        self.elements += count
        self.charge((BYTES_PER_MAP_ENTRY + _BASE[ktype] + _BASE[vtype]) * count)
        if ktype == vtype == _STRING:  # keys and values alternate: 2 * count strings
            self.strings(2 * count, max((key or _TEXT)[1][0], (item or _TEXT)[1][0]))
        elif ktype in _SCALARS and vtype in _SCALARS:
            fixed = _FIXED_COMPACT if self.compact else _FIXED_BINARY
            kfixed, vfixed = fixed.get(ktype), fixed.get(vtype)
            if kfixed is not None and vfixed is not None:
                self.skip((kfixed + vfixed) * count)
            elif kfixed is None and vfixed is None:  # compact: both varints
                self.skip_varints(2 * count, max(_VARINTS[ktype], _VARINTS[vtype]))
            else:
                self.skip_scalar_pairs(ktype, vtype, count)
        else:
            for _ in range(count):
                self.value(ktype, key, depth + 1)
                self.value(vtype, item, depth + 1)

    def strings(self, count: int, per_byte: int) -> None:
        """Step over ``count`` strings (their base cost charged), charging their bytes a batch at
        a time; after each batch, a run of copies of its last string is stepped over at once."""
        data, pos, end, compact = self.data, self.pos, self.end, self.compact
        unpack = _BE_I32.unpack_from
        done = 0
        batch = 1  # the first check comes after one string: a list of copies costs no loop
        while done < count:
            chars = size = 0
            start = pos
            if compact:
                for _ in range(min(batch, count - done)):
                    start = pos
                    size = data[pos]  # IndexError past the end
                    if size >= 0x80:
                        self.pos = pos
                        size = self.length()
                        pos = self.pos + size
                    else:
                        pos += size + 1
                    chars += size
            else:
                for _ in range(min(batch, count - done)):
                    start = pos
                    size = unpack(data, pos)[0]  # struct.error past the end
                    if size < 0:
                        raise _Stop
                    pos += size + 4
                    chars += size
            if pos > end:
                raise _Stop  # the last string runs past the end (the others would not parse)
            done += min(batch, count - done)
            if done < count:
                unit = data[start:pos]
                if data.startswith(unit, pos):
                    repeats = _repeats(data, pos, unit, count - done)
                    pos += repeats * len(unit)
                    chars += repeats * size
                    done += repeats
            self.pos = pos
            self.charge(per_byte * chars)
            batch = _STRING_BATCH

    def elements_of(self, etype: int, element: _Type | None, count: int, depth: int) -> None:
        """Walk ``count`` structs or containers (their base costs charged), stepping over runs of
        identical elements at once."""
        data = self.data
        done = 0
        while done < count:
            start, cost, elements, structs = self.pos, self.cost, self.elements, self.structs
            self.value(etype, element, depth)
            done += 1
            if done == count or self.pos - start > _RUN_BLOCK:
                continue
            unit = data[start : self.pos]
            if not data.startswith(unit, self.pos):
                continue
            repeats = _repeats(data, self.pos, unit, count - done)
            self.pos += repeats * len(unit)
            self.elements += (self.elements - elements) * repeats
            self.structs += (self.structs - structs) * repeats
            done += repeats
            self.charge((self.cost - cost) * repeats)


def _nth_true(mask: np.ndarray[Any, np.dtype[np.bool_]], n: int) -> int:
    """The index of the ``n``-th True in ``mask`` (which has at least n), plus one: halves are
    counted until a few KiB are left, so no index array is built for the whole chunk."""
    low, high = 0, len(mask)
    while high - low > 4096:
        middle = (low + high) // 2
        left = int(np.count_nonzero(mask[low:middle]))
        if left >= n:
            high = middle
        else:
            n -= left
            low = middle
    return low + int(np.flatnonzero(mask[low:high])[n - 1]) + 1


def _repeats(data: bytes | bytearray, pos: int, unit: bytes | bytearray, limit: int) -> int:
    """How many copies of ``unit`` (at most ``limit``) follow each other from ``pos``: blocks of
    doubling size while they match, halving once they do not, so a run of n takes ~2 log n
    comparisons and blocks stay under ``_RUN_BLOCK`` bytes."""
    found = 0
    block, copies = unit, 1
    while found < limit:
        if copies <= limit - found and data.startswith(block, pos):
            pos += len(block)
            found += copies
            if len(block) * 2 <= _RUN_BLOCK:
                block, copies = block + block, copies * 2
        elif copies > 1:
            copies //= 2
            block = block[: len(unit) * copies]
        else:
            break
    return found


def check_thrift_decode_budget(
    data: bytes | bytearray, protocol: Literal["thrift-binary", "thrift-compact"]
) -> None:
    """Refuse, before the C reader runs, a Thrift request whose decoded form would exceed the
    memory budget (``WARDEN_MAX_REQUEST_MB``), with ``InvalidInput`` naming the estimate and the
    limit, or that holds a bounded list over its bound (``rca.graph``: more than ``MAX_EDGES``),
    with the codec's own error. Malformed bytes are left to the reader (it reports them), except
    nesting deeper than it allows, refused here. ``none`` turns the walk off altogether: the
    codec then counts a bounded list once the reader has built it."""
    budget = current_budget().peak_bytes
    if budget is None:
        return
    if len(data) * WORST_BYTES_PER_WIRE_BYTE <= budget and len(data) <= MOST_COUNTED:
        return  # its worst case fits, and it is too short to hold a bounded list over its bound
    walk = _Walk(data, budget, compact=protocol == "thrift-compact")
    try:
        walk.request()
    except (_Stop, IndexError, struct.error):  # the last two: a read past the end
        return
    except _TooDeep:
        raise InvalidInput(
            f"request is not valid {protocol}: nested more than {MAX_DEPTH} levels deep"
        ) from None
    except _Over:
        raise InvalidInput(
            f"decoding this request would take more than {walk.cost / (1 << 20):,.0f} MiB (it "
            f"holds at least {walk.elements:,} list elements and {walk.structs:,} structs), over "
            f"the per-request budget of {budget / (1 << 20):,.0f} MiB (WARDEN_MAX_REQUEST_MB): "
            "send fewer points or series per request, or packed arrays (the *_packed fields)"
        ) from None

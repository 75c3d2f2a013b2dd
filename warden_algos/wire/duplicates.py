"""Refuse JSON objects that repeat a key (orjson, like most parsers, keeps the last silently).

orjson cannot report a repeated key, so the check works on what it returns. Every key in a JSON
text is followed by exactly one ``:`` outside a string, and a ``:`` elsewhere can only be inside a
string. So when the text's ``:`` bytes number exactly the keys orjson kept plus the ``:`` in the
strings counted, no key was dropped: no object repeated a key. Counting the text's ``:`` is one C
pass over the bytes; counting keys walks the parsed objects but not the numeric arrays (their
lists hold no keys, and a string or object hidden in one only makes the counts differ). When they
differ, the text is parsed again with the standard library, which reports every object's pairs in
order, to find the repeated key and its path; only then is the cost of a second parse paid.

Sound because the fast test can only fail towards the exact one: a dropped key, or a string not
counted, leaves more ``:`` in the text than were counted. The one way a string could hold more
``:`` than its text is an escaped colon (``\\u003a``), so a text with ``\\u003`` anywhere goes
to the exact check.
"""

from __future__ import annotations

import json
from typing import Any

from warden_algos.interfaces import InvalidInput

#: Fields whose list value is a numeric array: not walked (no keys in a list of numbers).
_ARRAY_FIELDS = frozenset({"timestamps", "values", "times", "sizes", "variances", "anomalies"})
#: Most ``:`` found one by one (``_colons``); beyond, the whole text is counted.
_FIND_LIMIT = 4096
#: String fields with no ``:`` in any valid request (a packed array's base64): not searched.
_UNSEARCHED_STRINGS = frozenset({"base64"})


def check_no_duplicate_keys(text: bytes | bytearray | str, parsed: Any, root: str = "") -> None:
    """Raise ``InvalidInput`` naming the key and its path if any object in ``text`` (already
    parsed by orjson into ``parsed``) repeats a key. ``root`` is the path of the text's top-level
    value (``"params"`` for a params document); ``""`` for a whole request."""
    expected = _counted_colons(parsed)
    if not _may_escape_a_colon(text) and _colons(text, expected) == expected:
        return
    found = _find_repeated_key(text)
    if found is None:
        return
    path, key = found
    if root:
        path = f"{root}.{path}" if path else root
    field = f"{path}.{key}" if path else key
    where = f"the object at {path}" if path else "the request's top level"
    raise InvalidInput(
        f"duplicate key {key!r} in {where}: a JSON object must not repeat a key", field=field
    )


def _may_escape_a_colon(text: bytes | bytearray | str) -> bool:
    if isinstance(text, str):
        return "\\u003" in text
    # A backslash is rare in a request: the one-byte search is memchr-fast, the other is not.
    return b"\\" in text and b"\\u003" in text


def _colons(text: bytes | bytearray | str, expected: int) -> int:
    """The ``:`` in ``text``, or any number above ``expected`` once there are more.

    A request holds a few dozen keys and megabytes of numbers, so finding each ``:`` with a
    one-byte search (memchr) beats counting every byte; with many keys, counting wins.
    """
    if isinstance(text, str) or expected > _FIND_LIMIT:
        return text.count(":") if isinstance(text, str) else text.count(b":")
    found = 0
    at = text.find(b":")
    while at >= 0:
        found += 1
        if found > expected:
            break
        at = text.find(b":", at + 1)
    return found


def _counted_colons(parsed: Any) -> int:
    """Keys in every object of ``parsed`` plus the ``:`` in the strings seen (numeric arrays
    skipped)."""
    total = 0
    stack = [parsed]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            total += len(item)
            for key, value in item.items():
                if ":" in key:
                    total += key.count(":")
                kind = type(value)
                if kind is str:
                    if key not in _UNSEARCHED_STRINGS and ":" in value:
                        total += value.count(":")
                elif kind is dict or (kind is list and key not in _ARRAY_FIELDS):
                    stack.append(value)
        elif type(item) is list:
            for value in item:
                kind = type(value)
                if kind is str:
                    total += value.count(":")
                elif kind is dict or kind is list:
                    stack.append(value)
        elif type(item) is str:
            total += item.count(":")
    return total


class _Pairs(list[tuple[str, Any]]):
    """An object's pairs, in order and with any repeats (the parse's ``object_pairs_hook``)."""


def _zero(_: str) -> int:
    return 0  # numbers do not matter here: parse them to a shared constant, no float objects


def _find_repeated_key(text: bytes | bytearray | str) -> tuple[str, str] | None:
    """(path of the object, key) of the first repeated key, objects in document order."""
    try:
        tree = json.loads(text, object_pairs_hook=_Pairs, parse_float=_zero, parse_int=_zero)
    except (ValueError, RecursionError):
        # orjson accepted the text; the standard parser gives up on nesting it allows
        raise InvalidInput("request nests objects or arrays too deeply to check") from None
    stack: list[tuple[str, Any]] = [("", tree)]
    while stack:
        path, item = stack.pop()
        children: list[tuple[str, Any]] = []
        if isinstance(item, _Pairs):
            seen: set[str] = set()
            for key, value in item:
                if key in seen:
                    return path, key
                seen.add(key)
                if isinstance(value, list):
                    children.append((f"{path}.{key}" if path else key, value))
        elif isinstance(item, list):
            for index, value in enumerate(item):
                if isinstance(value, list):  # an object (_Pairs) or an array
                    children.append((f"{path}[{index}]", value))
        stack.extend(reversed(children))
    return None

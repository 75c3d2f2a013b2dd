"""Explanations on the wire: one object per detection, in the order of the detections.

Both codecs spell an explanation the same way (README "Explanations"): the optional numbers are
left out when unknown, ``members`` and ``context`` (a name-to-text object; Thrift: a map) when
empty, and the multivariate top columns come as two parallel lists, ``columns`` and ``shares``
(largest share first), which keeps their order in JSON objects and in Thrift alike.
"""

from __future__ import annotations

from typing import Any

from warden_algos.interfaces.types import Explanation

#: The optional scalar fields, in wire order (the record's first fields).
SCALARS = Explanation._fields[: Explanation._fields.index("members")]
#: Every field, in wire order (the record's columns are two lists on the wire).
FIELDS = (*SCALARS, "members", "context", "columns", "shares", "reason")


def to_fields(one: Explanation) -> dict[str, Any]:
    """The fields a codec writes (unknown ones left out)."""
    out: dict[str, Any] = {name: getattr(one, name) for name in SCALARS}
    out = {name: value for name, value in out.items() if value is not None}
    if one.members:
        out["members"] = list(one.members)
    if one.context:
        out["context"] = dict(sorted(one.context))  # Thrift writes map keys in this order
    if one.columns:
        out["columns"] = [name for name, _ in one.columns]
        out["shares"] = [share for _, share in one.columns]
    out["reason"] = one.reason
    return out


def from_fields(fields: dict[str, Any]) -> Explanation:
    """The record a codec read (a host's view; the sender already checked it)."""
    columns = fields.get("columns") or []
    shares = fields.get("shares") or []
    if len(columns) != len(shares):
        raise ValueError("an explanation's columns and shares must pair up")
    return Explanation(
        **{name: fields.get(name) for name in SCALARS},
        members=tuple(fields.get("members") or ()),
        context=tuple(sorted((fields.get("context") or {}).items())),
        columns=tuple(zip(columns, (float(share) for share in shares), strict=True)),
        reason=fields.get("reason") or "",
    )

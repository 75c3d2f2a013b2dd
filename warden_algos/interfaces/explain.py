"""Complete and check the explanations of a result, once the caller asked for them.

A detector may attach partial explanations (its members, its context); ``from_flags`` attaches
where each run peaks and ends. Here the SDK fills the rest the same way for every detector, from
what any result has: the value at the peak and the band there (``band_units``), a multivariate
detection's top columns, and a one-sentence ``reason``. What an author attached is checked like the
rest of a result (one per detection, bounded sizes) so that a plugin cannot make an answer
unbounded or malformed. Imported only when explanations are wanted: the hot path never loads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from .errors import AlgorithmFailed
from .multivariate import MultivariateResult
from .types import DetectResult, Explanation, F64Array, I64Array

#: Bounds on what a detector may attach to one explanation (the answer stays small).
MAX_MEMBERS = 64
MAX_CONTEXT = 16
MAX_TEXT = 200
MAX_REASON = 500
#: A multivariate explanation names the columns that make up this much of the detection...
COLUMN_SHARE_COVERED = 0.8
#: ...but at most this many.
MAX_COLUMNS_NAMED = 3


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _at(band: F64Array | None, position: int) -> float | None:
    return None if band is None else _number(band[position])


def band_units(
    actual: float | None, expected: float | None, lower: float | None, upper: float | None
) -> float | None:
    """How far ``actual`` is from ``expected`` (or the band's middle), in half-widths of the band
    on its side: 1 at the band's edge, negative below. None when it cannot be said."""
    if actual is None:
        return None
    reference = expected
    if reference is None and lower is not None and upper is not None:
        reference = (lower + upper) / 2
    if reference is None:
        return None
    edge = upper if actual >= reference else lower
    if edge is None:
        return None
    half = abs(edge - reference)
    if half == 0:
        return None
    return _number((actual - reference) / half)


def _text(value: object, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise AlgorithmFailed(f"explanation {what} must be text, got {type(value).__name__}")
    return value[:limit]


def _checked(given: Explanation, index: int) -> Explanation:
    """An author's explanation, bounded; its numbers must be finite or None."""
    if not isinstance(given, Explanation):
        raise AlgorithmFailed(
            f"explanations[{index}] is {type(given).__name__}, expected an Explanation"
        )
    if len(given.members) > MAX_MEMBERS or len(given.context) > MAX_CONTEXT:
        raise AlgorithmFailed(
            f"explanations[{index}] has more than {MAX_MEMBERS} members or {MAX_CONTEXT} "
            "context entries"
        )
    numbers: dict[str, float | None] = {}
    for name in ("actual", "expected", "lower", "upper", "band_units"):
        value = getattr(given, name)
        try:
            numbers[name] = None if value is None else _number(value)
        except (TypeError, ValueError):
            raise AlgorithmFailed(f"explanations[{index}].{name} must be a number") from None
    for name in ("peak", "last", "points"):
        value = getattr(given, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | np.integer)
        ):
            raise AlgorithmFailed(f"explanations[{index}].{name} must be an integer")
    if len(given.columns) > MAX_COLUMNS_NAMED:
        raise AlgorithmFailed(f"explanations[{index}] names more than {MAX_COLUMNS_NAMED} columns")
    try:
        columns = tuple((_text(name, "columns"), float(share)) for name, share in given.columns)
    except (TypeError, ValueError):
        raise AlgorithmFailed(
            f"explanations[{index}].columns must be (name, share) pairs"
        ) from None
    members = tuple(_text(member, "members") for member in given.members)
    context = tuple(
        sorted(
            (_text(name, "context names"), _text(value, "context values"))
            for name, value in given.context
        )
    )
    return given._replace(
        members=members,
        context=context,
        columns=columns,
        reason=_text(given.reason, "reason", MAX_REASON) if given.reason else "",
        actual=numbers["actual"],
        expected=numbers["expected"],
        lower=numbers["lower"],
        upper=numbers["upper"],
        band_units=numbers["band_units"],
    )


def _given(explanations: Sequence[Explanation] | None, detections: int) -> list[Explanation | None]:
    if explanations is None:
        return [None] * detections
    if not isinstance(explanations, tuple | list) or len(explanations) != detections:
        raise AlgorithmFailed(f"a result must carry one explanation per detection ({detections})")
    return [_checked(one, index) for index, one in enumerate(explanations)]


def _short(number: float) -> str:
    return format(number, ".4g")


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reason_of(one: Explanation) -> str:
    """One sentence from the fields: what a person reads in an alert."""
    parts: list[str] = []
    if one.actual is None:
        parts.append("flagged")
    elif one.band_units is not None:
        reference = (
            "the expected " + _short(one.expected)
            if one.expected is not None
            else ("the band's middle")
        )
        side = "above" if one.band_units >= 0 else "below"
        parts.append(
            f"value {_short(one.actual)} is {_short(abs(one.band_units))} band units {side} "
            f"{reference}"
        )
        if one.lower is not None and one.upper is not None:
            parts[-1] += f" (band {_short(one.lower)} to {_short(one.upper)})"
    elif one.expected is not None:
        parts.append(f"value {_short(one.actual)}, expected {_short(one.expected)}")
    else:
        parts.append(f"value {_short(one.actual)}")
    if one.points is not None and one.points > 1 and one.peak is not None:
        parts.append(f"a run of {one.points} points peaking at {_when(one.peak)}")
    if one.columns:
        parts.append(
            "driven by " + ", ".join(f"{name} ({share:.0%})" for name, share in one.columns)
        )
    if one.members:
        parts.append("flagged by " + ", ".join(one.members))
    if one.context:
        parts.append(", ".join(f"{name}={value}" for name, value in one.context))
    return "; ".join(parts)


def _completed(
    given: Explanation | None, at: int, timestamps: I64Array, fill: dict[str, Any]
) -> Explanation:
    one = given or Explanation()
    peak = at if one.peak is None else one.peak
    position = int(np.searchsorted(timestamps, peak))
    if position >= timestamps.shape[0] or int(timestamps[position]) != peak:
        raise AlgorithmFailed(f"an explanation's peak {peak} is not one of the input timestamps")
    one = one._replace(
        peak=peak,
        last=at if one.last is None else one.last,
        points=1 if one.points is None else one.points,
        **{
            name: value(position)
            for name, value in fill.items()
            if getattr(one, name) in (None, ())
        },
    )
    if one.band_units is None:
        one = one._replace(band_units=band_units(one.actual, one.expected, one.lower, one.upper))
    return one if one.reason else one._replace(reason=reason_of(one))


def explain_detections(
    result: DetectResult, timestamps: I64Array, values: F64Array
) -> DetectResult:
    """``result`` with one complete explanation per detection."""
    fill = {
        "actual": lambda position: _number(values[position]),
        "expected": lambda position: _at(result.expected, position),
        "lower": lambda position: _at(result.lower, position),
        "upper": lambda position: _at(result.upper, position),
    }
    given = _given(result.explanations, result.timestamps.shape[0])
    return result._replace(
        explanations=tuple(
            _completed(one, int(at), timestamps, fill)
            for one, at in zip(given, result.timestamps, strict=True)
        )
    )


def top_columns(shares: F64Array, columns: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """The largest shares covering ``COLUMN_SHARE_COVERED`` of a detection, at most
    ``MAX_COLUMNS_NAMED`` (at least one), ties by column order."""
    order = np.argsort(-shares, kind="stable")
    named: list[tuple[str, float]] = []
    covered = 0.0
    for index in order[:MAX_COLUMNS_NAMED]:
        named.append((columns[int(index)], float(shares[index])))
        covered += float(shares[index])
        if covered >= COLUMN_SHARE_COVERED:
            break
    return tuple(named)


def explain_matrix_detections(
    result: MultivariateResult, timestamps: I64Array, matrix: F64Array, columns: Sequence[str]
) -> MultivariateResult:
    """``result`` with one complete explanation per detection: its top columns, and the top
    column's value (and expected value, when the detector has them) at the peak."""
    given = _given(result.explanations, result.timestamps.shape[0])
    completed = []
    for row, (one, at) in enumerate(zip(given, result.timestamps, strict=True)):
        named = top_columns(result.contributions[row], columns)
        top = list(columns).index(named[0][0])
        fill = {
            "columns": lambda position, named=named: named,
            "actual": lambda position, top=top: _number(matrix[position, top]),
            "expected": lambda position, top=top: (
                None if result.expected is None else _number(result.expected[position, top])
            ),
        }
        completed.append(_completed(one, int(at), timestamps, fill))
    return result._replace(explanations=tuple(completed))

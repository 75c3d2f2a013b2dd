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
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import AlgorithmFailed, InvalidInput
from .multivariate import MultivariateResult
from .types import DetectResult, Explanation, F64Array, I64Array

#: Bounds on what a detector may attach to one explanation (the answer stays small).
MAX_MEMBERS = 16
MAX_CONTEXT = 16
MAX_TEXT = 100
MAX_REASON = 500
#: Detections one answer may explain: with the bounds above, a few KB each at most, so an
#: answer with explanations stays within some tens of MB whatever the request.
MAX_EXPLAINED = 10_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
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
    """Text that every wire format can carry (valid UTF-8), cut to ``limit`` characters."""
    if not isinstance(value, str):
        raise AlgorithmFailed(f"explanation {what} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise AlgorithmFailed(f"explanation {what} is not valid UTF-8 text") from None
    return value[:limit]


def _real(value: object, what: str) -> float | None:
    """A finite number or None (not a bool, not text that happens to parse)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise AlgorithmFailed(f"{what} must be a number, got {type(value).__name__}")
    return _number(value)


def _integer(value: object, what: str) -> int | None:
    """An int64 or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise AlgorithmFailed(f"{what} must be an integer, got {type(value).__name__}")
    number = int(value)
    if not INT64_MIN <= number <= INT64_MAX:
        raise AlgorithmFailed(f"{what} must fit in 64 bits, got {number}")
    return number


def _pairs(value: object, what: str) -> list[tuple[object, object]]:
    if not isinstance(value, tuple | list) or not all(
        isinstance(pair, tuple | list) and len(pair) == 2 for pair in value
    ):
        raise AlgorithmFailed(f"{what} must be (name, value) pairs")
    return [(pair[0], pair[1]) for pair in value]


def _checked(given: object, index: int) -> Explanation:
    """An author's explanation, bounded and typed: finite numbers or None, int64 times, text."""
    where = f"explanations[{index}]"
    if not isinstance(given, Explanation):
        raise AlgorithmFailed(f"{where} is {type(given).__name__}, expected an Explanation")
    if not isinstance(given.members, tuple | list) or len(given.members) > MAX_MEMBERS:
        raise AlgorithmFailed(f"{where}.members must be at most {MAX_MEMBERS} names")
    context_pairs = _pairs(given.context, f"{where}.context")
    if len(context_pairs) > MAX_CONTEXT:
        raise AlgorithmFailed(f"{where}.context has more than {MAX_CONTEXT} entries")
    context = tuple(
        sorted(
            (_text(name, "context names"), _text(text, "context values"))
            for name, text in context_pairs
        )
    )
    if len({name for name, _ in context}) != len(context):
        raise AlgorithmFailed(f"{where}.context names an entry twice")
    column_pairs = _pairs(given.columns, f"{where}.columns")
    if len(column_pairs) > MAX_COLUMNS_NAMED:
        raise AlgorithmFailed(f"{where} names more than {MAX_COLUMNS_NAMED} columns")
    columns = []
    for name, share in column_pairs:
        number = _real(share, f"{where}.columns' shares")
        if number is None or not 0.0 <= number <= 1.0:
            raise AlgorithmFailed(f"{where}.columns' shares must be numbers in [0, 1]")
        columns.append((_text(name, "columns"), number))
    if not isinstance(given.reason, str):
        raise AlgorithmFailed(f"{where}.reason must be text")
    return Explanation(
        peak=_integer(given.peak, f"{where}.peak"),
        last=_integer(given.last, f"{where}.last"),
        points=_integer(given.points, f"{where}.points"),
        actual=_real(given.actual, f"{where}.actual"),
        expected=_real(given.expected, f"{where}.expected"),
        lower=_real(given.lower, f"{where}.lower"),
        upper=_real(given.upper, f"{where}.upper"),
        band_units=_real(given.band_units, f"{where}.band_units"),
        members=tuple(_text(member, "members") for member in given.members),
        context=context,
        columns=tuple(columns),
        reason=_text(given.reason, "reason", MAX_REASON),
    )


def _given(explanations: object, detections: int) -> list[Explanation | None]:
    if explanations is None:
        return [None] * detections
    if detections > MAX_EXPLAINED:
        raise InvalidInput(
            f"this answer has {detections} detections, more than the {MAX_EXPLAINED} "
            "include_explanations can explain: ask without it, or for fewer points",
            field="include_explanations",
        )
    if not isinstance(explanations, tuple | list) or len(explanations) != detections:
        raise AlgorithmFailed(f"a result must carry one explanation per detection ({detections})")
    return [_checked(one, index) for index, one in enumerate(explanations)]


def _short(number: float) -> str:
    return format(number, ".4g")


def reason_of(one: Explanation) -> str:
    """One sentence from the fields, at most ``MAX_REASON`` characters: what a person reads in
    an alert. A matrix detection's value is its top column's."""
    parts: list[str] = []
    value = f"{one.columns[0][0]} value" if one.columns else "value"
    if one.actual is None:
        parts.append("flagged")
    elif one.band_units is not None:
        reference = (
            f"the expected {_short(one.expected)}"
            if one.expected is not None
            else "the band's middle"
        )
        side = "above" if one.band_units >= 0 else "below"
        parts.append(
            f"{value} {_short(one.actual)} is {_short(abs(one.band_units))} band units {side} "
            f"{reference}"
        )
        if one.lower is not None and one.upper is not None:
            parts[-1] += f" (band {_short(one.lower)} to {_short(one.upper)})"
    elif one.expected is not None:
        parts.append(f"{value} {_short(one.actual)}, expected {_short(one.expected)}")
    else:
        parts.append(f"{value} {_short(one.actual)}")
    if one.points is not None and one.points > 1:
        parts.append(f"a run of {one.points} points")
    if one.columns:
        parts.append(
            "driven by " + ", ".join(f"{name} ({share:.0%})" for name, share in one.columns)
        )
    if one.members:
        parts.append("flagged by " + ", ".join(one.members))
    if one.context:
        parts.append(", ".join(f"{name}={text}" for name, text in one.context))
    return "; ".join(parts)[:MAX_REASON]


def _position(timestamps: I64Array, time: int, what: str) -> int:
    position = int(np.searchsorted(timestamps, time))
    if position >= timestamps.shape[0] or int(timestamps[position]) != time:
        raise AlgorithmFailed(f"an explanation's {what} {time} is not one of the input timestamps")
    return position


def _completed(
    given: Explanation | None,
    at: int,
    timestamps: I64Array,
    at_peak: Callable[[int], dict[str, Any]],
) -> Explanation:
    """``given`` (or nothing) completed for the detection at ``at``: its run (the detection's
    own point when the detector said nothing), what ``at_peak(position)`` reads at the peak for
    every field left empty, the band units and the sentence. The run must hold together:
    ``at <= peak <= last``, both input times, and ``1 <= points <=`` the run's points."""
    one = given or Explanation()
    peak = at if one.peak is None else one.peak
    last = at if one.last is None else one.last
    if not at <= peak <= last:
        raise AlgorithmFailed(
            f"an explanation's run must have its detection ({at}) <= peak ({peak}) <= last ({last})"
        )
    position = _position(timestamps, peak, "peak")
    span = _position(timestamps, last, "last") - _position(timestamps, at, "detection") + 1
    points = 1 if one.points is None else one.points
    if not 1 <= points <= span:
        raise AlgorithmFailed(f"an explanation's run counts {points} points in a span of {span}")
    read = {
        name: found for name, found in at_peak(position).items() if getattr(one, name) in (None, ())
    }
    one = one._replace(peak=peak, last=last, points=points, **read)
    if one.band_units is None:
        one = one._replace(band_units=band_units(one.actual, one.expected, one.lower, one.upper))
    return one if one.reason else one._replace(reason=reason_of(one))


def explain_detections(
    result: DetectResult, timestamps: I64Array, values: F64Array
) -> DetectResult:
    """``result`` with one complete explanation per detection."""

    def at_peak(position: int) -> dict[str, Any]:
        return {
            "actual": _number(values[position]),
            "expected": _at(result.expected, position),
            "lower": _at(result.lower, position),
            "upper": _at(result.upper, position),
        }

    given = _given(result.explanations, result.timestamps.shape[0])
    return result._replace(
        explanations=tuple(
            _completed(one, int(at), timestamps, at_peak)
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
    index_of = {name: index for index, name in enumerate(columns)}
    completed = []
    for row, (one, at) in enumerate(zip(given, result.timestamps, strict=True)):
        named = top_columns(result.contributions[row], columns)
        top = index_of[named[0][0]]

        def at_peak(
            position: int, named: tuple[tuple[str, float], ...] = named, top: int = top
        ) -> dict[str, Any]:
            expected = None if result.expected is None else result.expected[position, top]
            return {
                "columns": named,
                "actual": _number(matrix[position, top]),
                "expected": None if expected is None else _number(expected),
            }

        completed.append(_completed(one, int(at), timestamps, at_peak))
    return result._replace(explanations=tuple(completed))

"""What one request may make the process spend, checked before the algorithm allocates anything.

The request-size limit counts bytes on the wire, not what an algorithm derives from them: a 10 MiB
RCA request with a million anomaly times and ``seasons=100`` asks for arrays of 10^8 cells, and a
``window`` of 100,000 asks a spectral transform per point of that width. So every algorithm
estimates, from its params and the input's shape alone (counts, no data), its peak memory and the
number of elementary operations it will do (:meth:`Algorithm.estimate`); ``run_detect`` /
``run_rca`` compare that with the budget and refuse with ``INVALID_INPUT`` naming the limit, in
microseconds, before any work. The default estimate is linear in the points (what a vectorised
numpy algorithm costs); an algorithm whose work grows faster in a parameter overrides it.

The budget comes from the environment so that every entry point (one-shot, serve, the node's
workers, a notebook) shares it: ``WARDEN_MAX_REQUEST_MB`` (peak memory, default 2048) and
``WARDEN_MAX_REQUEST_MOPS`` (millions of elementary operations, about a nanosecond each: default
50,000, some 30-50 s of work); ``none`` turns a limit off explicitly.
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

from .errors import InvalidInput

DEFAULT_PEAK_MB = 2048
DEFAULT_MOPS = 50_000


class InputShape(NamedTuple):
    """A request's size, without its data."""

    points: int  # values in all series of the request
    series: int  # series: 1 for detect; the metric of interest plus related metrics for RCA
    longest: int  # points in the longest series
    anomalies: int = 0  # RCA: anomaly times given
    columns: int = 0  # a multivariate detect: the matrix's columns (points = rows x columns)


class WorkEstimate(NamedTuple):
    peak_bytes: int
    operations: int


class Budget(NamedTuple):
    peak_bytes: int | None
    operations: int | None


def _limit(variable: str, default: int, unit: int) -> int | None:
    return _parsed_limit(variable, os.environ.get(variable, ""), default, unit)


@functools.lru_cache(maxsize=64)
def _parsed_limit(variable: str, raw: str, default: int, unit: int) -> int | None:
    """A limit's value from its variable's text (cached: the environment is read on every
    request, so a change applies to the next one, but parsed once per distinct text)."""
    raw = raw.strip().lower()
    if not raw:
        return default * unit
    if raw == "none":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(
            f"{variable}={raw!r} is not a number or 'none'; the request budget cannot be read"
        ) from None
    return int(value * unit)


def current_budget() -> Budget:
    return Budget(
        peak_bytes=_limit("WARDEN_MAX_REQUEST_MB", DEFAULT_PEAK_MB, 1 << 20),
        operations=_limit("WARDEN_MAX_REQUEST_MOPS", DEFAULT_MOPS, 1_000_000),
    )


def check_budget(algorithm: str, estimate: WorkEstimate, budget: Budget | None = None) -> None:
    """Refuse a request whose estimated work is over the budget, naming what and the limit."""
    budget = budget or current_budget()
    checks = (  # (value, limit, scale, "would ...", unit, variable, advice)
        (estimate.peak_bytes, budget.peak_bytes, 1 << 20, "need about", "MiB",
         "WARDEN_MAX_REQUEST_MB", "send fewer points or anomaly times, or smaller window-like "
         "params"),
        (estimate.operations, budget.operations, 1_000_000, "do about", "million operations",
         "WARDEN_MAX_REQUEST_MOPS", "send fewer points, or smaller window-like params"),
    )  # fmt: skip
    for value, limit, scale, verb, unit, variable, advice in checks:
        if limit is not None and value > limit:
            raise InvalidInput(
                f"{algorithm} would {verb} {value / scale:,.0f} {unit} for this request (its "
                f"size and params), over the per-request budget of {limit / scale:,.0f} "
                f"{unit.split()[0]} ({variable}): {advice}"
            )

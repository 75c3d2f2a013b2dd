"""Helpers the running-statistics detectors (mad, ewma) share for streaming.

The generic context-replay helpers (``ContextState``, ``continuing_flags``, ...) are public, in
``warden_algos.interfaces.streaming``; what is here is specific to detectors whose state is the
batch arithmetic's carried quantities.
"""

from __future__ import annotations

import numpy as np

from warden_algos.interfaces import F64Array

from .common import Prepared, prepare, rescaled

# Running-statistics detectors (mad, ewma) ---------------------------------------------------------
#
# Their state is not a context to replay but what the batch arithmetic carries from one point to
# the next (a window's contents, a recursion's sums), plus the series-wide quantities ``prepare``
# derives (scale, spread floor), frozen at fit. Those are one-element arrays rather than JSON
# numbers so that a state's size never depends on how many digits its numbers print with (and so
# that inf and NaN survive); NaN means "not learnt yet" (fitted on nothing valid), and the first
# valid points streamed then learn them.


def scalar(value: float) -> np.ndarray:
    """A float as a one-element state array (NaN for not learnt yet)."""
    return np.array([value], dtype=np.float64)


def value_of(array: np.ndarray) -> float:
    """The float a :func:`scalar` array holds."""
    return float(array[0])


def prepared_as_fitted(values: F64Array, scale: np.ndarray, floor: np.ndarray) -> Prepared:
    """New points in the units the fit froze (``rescaled``, the frozen floor); fitted on nothing
    valid yet (``scale`` NaN), the chunk's own ``prepare``: its points play the history's role."""
    frozen = value_of(scale)
    if np.isnan(frozen):
        return prepare(values)
    return Prepared(rescaled(values, frozen), frozen, value_of(floor))


def learnt_now(scale: np.ndarray, prepared: Prepared) -> bool:
    """Whether this chunk fixes the frozen quantities: none were learnt and it has a valid point."""
    return bool(np.isnan(value_of(scale))) and bool(np.isfinite(prepared.values).any())


def trailing_window(context: F64Array, new: F64Array, keep: int) -> F64Array:
    """The last ``keep`` values of ``context`` then ``new``, NaN-padded at the front to exactly
    ``keep``: a window of constant size whose missing head is what a batch computation sees before
    a series' start (nothing), so a NaN-skipping window statistic is unchanged by the padding."""
    out = np.full(keep, np.nan)
    tail = np.concatenate([context, new])[-keep:] if keep else new[:0]
    if tail.shape[0]:
        out[keep - tail.shape[0] :] = tail
    return out


def frozen_units_ok(scale: np.ndarray, floor: np.ndarray) -> bool:
    """Whether a state's frozen scale and floor are what a fit writes: one-element arrays, both NaN
    (not learnt yet), or a positive finite scale and a finite floor >= 0 (anything else would
    divide new points by 0 or infinity)."""
    if np.shape(scale) != (1,) or np.shape(floor) != (1,):
        return False
    s, f = value_of(scale), value_of(floor)
    if np.isnan(s):
        return bool(np.isnan(f))
    return bool(np.isfinite(s) and s > 0.0 and np.isfinite(f) and f >= 0.0)

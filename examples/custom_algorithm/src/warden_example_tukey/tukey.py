"""Tukey's fences over a trailing window: a robust, trainable detector in about eighty lines.

This file is the template for a new algorithm: a ``Params`` model declaring every parameter with
its default, bounds and description (``DetectorParams`` adds the shared ``every_point`` switch);
a class with ``name`` and ``summary``; and a vectorised ``detect`` that reads numpy arrays and
returns one detection per incident with ``DetectResult.from_flags``. Heavy imports (pandas, scipy)
would go inside ``detect``, never at the top of the module. The requests in ``warden_requests/``
are replayed through the executable by ``warden-algos build --verify``.

It is also trainable (README, "Trained algorithms"): a point's fences depend only on the
``window`` points before it, so the fitted state is those points (``ContextState``), and
``detect_next`` scores new points by running the same arithmetic over the state's window and the
new points. Streaming a series in chunks therefore finds exactly what one ``detect`` call finds,
and the conformance kit checks it.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field

from warden_algos.interfaces import (
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
    TrainableDetector,
)
from warden_algos.interfaces.streaming import (
    ContextState,
    context_of,
    continuing_flags,
    joined,
    still_open,
)


class TukeyParams(DetectorParams):
    window: int = Field(48, ge=4, le=10_000, description="Points in the trailing window.")
    fence: float = Field(
        3.0, gt=0, description="Fence distance in IQRs beyond the quartiles (1.5 mild, 3 far out)."
    )


class TukeyState(ContextState):
    """The last ``window`` points seen (``times``, ``values``) and whether an incident is open:
    everything the fences of the next points depend on."""


class TukeyFences(TrainableDetector[TukeyParams, TukeyState]):
    """Flags a point outside [Q1 - fence*IQR, Q3 + fence*IQR] of the previous ``window`` points.

    Quartiles ignore outliers, so a burst of anomalies does not widen its own band the way a mean
    and standard deviation would. Good for skewed, spiky metrics; O(n * window) time. Trainable:
    fit keeps the last ``window`` points, so a streamed point costs one window's work.
    """

    name = "tukey_fences"
    summary = "Flags points beyond Tukey's fences of the trailing window's quartiles."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        outside, scores, expected, lower, upper = self._fences(values)
        return DetectResult.from_flags(
            timestamps,
            outside,
            scores,
            every_point=self.params.every_point,
            expected=expected,
            lower=lower,
            upper=upper,
        )

    def fit(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> TukeyState:
        times, kept = context_of(timestamps, values, self.params.window)
        outside = self._fences(values)[0]
        return TukeyState(times=times, values=kept, open_incident=still_open(outside, False))

    def detect_next(
        self, dimensions: list[str], timestamps: I64Array, values: F64Array, state: TukeyState
    ) -> tuple[DetectResult, TukeyState]:
        all_times, all_values = joined(state, timestamps, values)
        seen = state.times.shape[0]  # the new points' outputs follow the state's window
        outside, scores, expected, lower, upper = (a[seen:] for a in self._fences(all_values))
        result = continuing_flags(
            timestamps,
            outside,
            scores,
            state.open_incident,
            every_point=self.params.every_point,
            expected=expected,
            lower=lower,
            upper=upper,
        )
        times, kept = context_of(all_times, all_values, self.params.window)
        after = TukeyState(
            times=times, values=kept, open_incident=still_open(outside, state.open_incident)
        )
        return result, after

    def _fences(
        self, values: F64Array
    ) -> tuple[np.ndarray, F64Array, F64Array, F64Array, F64Array]:
        """Per point: outside the fences?, score, median, lower and upper fence (NaN until a
        full window precedes the point)."""
        window, fence = self.params.window, self.params.fence
        n = values.shape[0]
        lower = np.full(n, np.nan)
        upper = np.full(n, np.nan)
        expected = np.full(n, np.nan)
        if n > window:
            windows = sliding_window_view(values[:-1], window)  # windows[i] precedes point i+window
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN: fine
                q1, median, q3 = np.nanpercentile(windows, [25, 50, 75], axis=1)
            iqr = q3 - q1
            lower[window:] = q1 - fence * iqr
            upper[window:] = q3 + fence * iqr
            expected[window:] = median
        with np.errstate(invalid="ignore"):
            outside = (values < lower) | (values > upper)
            width = np.where(upper > lower, upper - lower, 1.0)
            distance = np.maximum(lower - values, values - upper) / width
        scores = np.nan_to_num(distance, nan=0.0, posinf=0.0)
        return outside, scores, expected, lower, upper

"""Spectral residual detector (Ren et al., "Time-Series Anomaly Detection Service at Microsoft",
KDD 2019): the saliency map of the latest point, over a trailing window extended by a few
extrapolated points.

Every point is scored from the window of ``window`` points that ends at it, so the score of a point
never depends on later data (the same score in batch and in streaming). The windows are batched:
one ``np.fft.rfft`` over a 2-D array of strided windows, chunked to bound memory. Never writes to
stdout.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from warden_algos.interfaces import (
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    F64Array,
    I64Array,
)
from warden_algos.interfaces.budget import InputShape, WorkEstimate

from .common import incident_mask

#: Amplitudes at or below this (relative to the window's largest) carry no information: their
#: log is set to 0 and the component is dropped, as in the authors' implementation.
EPS = 1e-8
#: Floats per chunk of stacked windows (~32 MB).
CHUNK_FLOATS = 4_000_000


class SpectralResidualParams(DetectorParams):
    window: int = Field(
        128,
        ge=16,
        le=100_000,
        description="Points in the trailing window whose spectrum scores its last point.",
    )
    mag_window: int = Field(
        3,
        ge=1,
        le=101,
        description="q: frequencies in the moving average of the log amplitude spectrum.",
    )
    score_window: int = Field(
        100,
        ge=1,
        le=10_000,
        description="z: preceding saliency values whose mean is the point's reference.",
    )
    threshold: float = Field(
        6.0,
        gt=0,
        le=1e6,
        description="tau: flag points whose saliency exceeds its local mean by this many times "
        "that mean, (S - mean) / mean > tau.",
    )
    extend_points: int = Field(
        5,
        ge=0,
        le=100,
        description="kappa: estimated points appended after the window, so that its last point "
        "is not at the edge of the transform.",
    )
    extend_lookback: int = Field(
        5,
        ge=1,
        le=100,
        description="m: preceding points whose average gradient extrapolates the estimate.",
    )
    cooldown: int = Field(
        43200,
        ge=0,
        le=100 * 365 * 86400,
        description="Seconds: flagged points closer than this to the previous flagged point "
        "belong to the same incident, which is reported once (ignored with every_point).",
    )

    @model_validator(mode="after")
    def _windows_fit(self) -> SpectralResidualParams:
        if self.score_window >= self.window:
            raise ValueError(
                f"score_window ({self.score_window}) must be smaller than window ({self.window})"
            )
        if self.extend_lookback >= self.window:
            raise ValueError(
                f"extend_lookback ({self.extend_lookback}) must be smaller than window "
                f"({self.window})"
            )
        return self


def _forward_filled(values: F64Array) -> F64Array | None:
    """Missing values carry the last valid one forward (leading ones take the first valid);
    None when nothing is valid. Causal, so a score still depends on the past only."""
    valid = ~np.isnan(values)
    if not valid.any():
        return None
    if valid.all():
        return values.copy()
    last_valid = np.where(valid, np.arange(values.shape[0]), 0)
    np.maximum.accumulate(last_valid, out=last_valid)
    filled: F64Array = values[last_valid]
    first = int(np.argmax(valid))
    filled[:first] = values[first]
    return filled


def _extended(rows: F64Array, lookback: int, count: int) -> F64Array:
    """Each row followed by ``count`` copies of the paper's estimate x' = x[j-m+1] + g * m, g the
    mean gradient from x[j-i] to x[j] (i = 1..m). As in the authors' implementation, j is the
    point before the last, so the estimate is where the trend said the latest point would be,
    and a latest point that departs from it stands out against the extension."""
    if count == 0:
        return rows
    width = rows.shape[1]
    m = min(lookback, width - 2)
    if m < 1:
        return np.concatenate((rows, np.repeat(rows[:, -1:], count, axis=1)), axis=1)
    anchor = rows[:, width - 2 : width - 1]  # x[j], j = the point before the last
    steps = np.arange(m, 0, -1, dtype=np.float64)  # i for columns j-m .. j-1
    gradient = ((anchor - rows[:, width - 2 - m : width - 2]) / steps).mean(axis=1)
    estimate = rows[:, width - 1 - m] + gradient * m
    return np.concatenate((rows, np.repeat(estimate[:, None], count, axis=1)), axis=1)


def _last_point_scores(
    rows: F64Array, mag_window: int, score_window: int, lookback: int, count: int
) -> F64Array:
    """Spectral residual score of the last point of every row (a window ending at that point)."""
    width = rows.shape[1]
    x = _extended(rows, lookback, count)
    x = x - x.mean(axis=1, keepdims=True)
    # The saliency map is scale-free: normalising each row keeps huge values from overflowing.
    peak = np.max(np.abs(x), axis=1, keepdims=True)
    x /= np.where(peak > 0, peak, 1.0)
    spectrum = np.fft.rfft(x, axis=1)
    amplitude = np.abs(spectrum)
    tiny = amplitude <= EPS * np.maximum(amplitude.max(axis=1, keepdims=True), EPS)
    log_amplitude = np.log(np.where(tiny, 1.0, amplitude))
    # Centred moving average over q frequencies of the full (symmetric) spectrum: reflect at 0
    # and at the last frequency, where the half spectrum folds.
    half = mag_window // 2
    if half > 0 and log_amplitude.shape[1] > 1:
        reflect = min(half, log_amplitude.shape[1] - 1)
        # An even-length transform's last bin (Nyquist) is its own mirror; an odd one's is not.
        fold = -2 if x.shape[1] % 2 == 0 else -1
        padded = np.concatenate(
            (
                log_amplitude[:, reflect:0:-1],
                log_amplitude,
                log_amplitude[:, fold : fold - reflect : -1],
            ),
            axis=1,
        )
        sums = np.cumsum(np.pad(padded, ((0, 0), (1, 0))), axis=1)
        size = 2 * reflect + 1
        average = (sums[:, size:] - sums[:, :-size]) / size
    else:
        average = log_amplitude
    # exp(R + iP) = exp(L - A) * spectrum / amplitude.
    gain = np.exp(log_amplitude - average) / np.where(tiny, 1.0, amplitude)
    gain[tiny] = 0.0
    saliency = np.abs(np.fft.irfft(spectrum * gain, n=x.shape[1], axis=1))
    latest = saliency[:, width - 1]
    z = min(score_window, width - 1)
    reference = saliency[:, width - 1 - z : width - 1].mean(axis=1)
    scores: F64Array = (latest - reference) / np.maximum(reference, EPS)
    return scores


class SpectralResidual(DetectAlgorithm[SpectralResidualParams]):
    """Spectral residual (SR) detector of Ren et al., "Time-Series Anomaly Detection Service at
    Microsoft" (KDD 2019). For each point, the trailing ``window`` points ending at it are
    extended by ``extend_points`` copies of an estimate extrapolated from the points before it
    (the paper's extension, which keeps the latest point off the edge of the transform); the log
    amplitude spectrum minus its moving average over ``mag_window`` frequencies is transformed
    back with the original phase into a saliency map S; the point's score is (S - S̄) / S̄, S̄
    the mean saliency of the ``score_window`` points before it in the same map. Scores above
    ``threshold`` are flagged, and flagged points less than ``cooldown`` seconds apart are one
    incident, reported once.

    Use it for sudden, short-lived changes (spikes, dips, the onset of a jump) in series of any
    scale or shape, periodic ones included, with one threshold for all: the regular part of the
    spectrum is what the method removes, and the score is relative to the local saliency. It is
    streaming-friendly: a point's score depends only on the window that ends at it, so batch and
    streaming give the same answer and the latest point is scored too. Do not use it for slow
    drifts or gradual level changes (saliency rises only at the edges of a change), to judge
    whether a sustained new level is normal (prefer a seasonal or level-shift detector), or on
    noise-free smooth signals (there the flat extension after a steep slope is itself the most
    salient thing in the window). It has no band in value units: expected, lower and upper are
    absent. Defaults were chosen on the NAB corpus (one setting for all 31 files); they differ
    from the paper's (z = 100 rather than 21 makes the reference steadier, and tau = 6 fits it).

    The spacing of the timestamps is ignored (the series is a sequence of samples), so it suits
    regularly sampled metrics best. Missing values (NaN) carry the last valid value forward for
    the transform and are never flagged. Points before the first full window are scored on all
    the points so far, once there are at least ``score_window`` + 8; earlier ones get no opinion.
    Cost grows with ``window`` (about 9 s per million points at the default; a ``window`` +
    ``extend_points`` with small prime factors is fastest).
    """

    name = "spectral_residual"
    summary = (
        "Spectral residual saliency (Microsoft, KDD 2019) over trailing windows; flags S > tau."
    )

    def estimate(self, shape: InputShape) -> WorkEstimate:
        """One transform of ``window + extend_points`` samples per point (shorter ones in the
        head: one per point up to the first full window), ~100 operations per sample (measured:
        about 9 s per million points at the default window) and ~500 in the head; memory is
        bounded by the chunking (about 6 arrays of CHUNK_FLOATS) plus a few series-long arrays."""
        p = self.params
        n, width = shape.longest, p.window + p.extend_points
        head = min(n, p.window - 1)
        head_samples = head * (head + 1) // 2 + head * p.extend_points
        body_samples = max(0, n - p.window + 1) * width
        chunk = min(CHUNK_FLOATS, max(head * width, body_samples))
        return WorkEstimate(
            peak_bytes=16 * 6 * chunk + 64 * shape.points,
            # the head's transforms run one row at a time (a Python loop, odd sizes): ~5x dearer
            operations=500 * head_samples + 100 * body_samples,
        )

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        p = self.params
        n = values.shape[0]
        scores = np.zeros(n)
        filled = _forward_filled(values) if n else None
        if filled is not None:
            finite = np.isfinite(filled)
            if not finite.all():  # +-inf: treat as missing
                filled = _forward_filled(np.where(finite, filled, np.nan))
        if filled is not None:
            with np.errstate(all="ignore"):
                scores = self._scores(filled)
            scores = np.minimum(np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0), 1e300)
        is_anomaly = (scores > p.threshold) & np.isfinite(values)
        if not p.every_point:
            is_anomaly = incident_mask(timestamps, is_anomaly, p.cooldown)
        return DetectResult.from_flags(timestamps, is_anomaly, scores, every_point=p.every_point)

    def _scores(self, filled: F64Array) -> F64Array:
        p = self.params
        n = filled.shape[0]
        scores = np.zeros(n)
        # Scale and shift the whole series once so that no window overflows: each window is
        # centred and scaled again below, so this changes no score.
        largest = float(np.max(np.abs(filled)))
        x = filled / largest if largest > 0 else filled.copy()
        x -= np.median(x)
        width = min(p.window, n)
        first_full = p.window - 1
        min_width = p.score_window + 8
        # Head: points before the first full window, each on all the points so far. One short
        # transform per point, at most `window` of them, so the loop stays small.
        for end in range(min_width - 1, min(first_full, n)):
            row = x[None, : end + 1]
            scores[end] = self._rows(row)[0]
        if n <= first_full:
            return scores
        windows = np.lib.stride_tricks.sliding_window_view(x, width)
        rows_per_chunk = max(1, CHUNK_FLOATS // (width + p.extend_points))
        for start in range(0, windows.shape[0], rows_per_chunk):
            block = windows[start : start + rows_per_chunk]
            scores[first_full + start : first_full + start + block.shape[0]] = self._rows(block)
        return scores

    def _rows(self, rows: F64Array) -> F64Array:
        p = self.params
        return _last_point_scores(
            rows, p.mag_window, p.score_window, p.extend_lookback, p.extend_points
        )

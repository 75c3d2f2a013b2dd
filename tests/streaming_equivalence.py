"""The streaming contract every trainable built-in is held to: fit on a prefix, stream the rest in
chunks, and the detections are the batch call's over the whole series.

Each detector's test module calls :func:`assert_streams_like_batch` with its own series (and
its documented tolerance, if any); :func:`stream` is the loop a caller would write.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from warden_algos.interfaces import DetectResult, run_detect
from warden_algos.interfaces.run_state import run_detect_next, run_fit


def stream(
    algorithm: Any, times: np.ndarray, values: np.ndarray, prefix: int, chunk: int
) -> tuple[DetectResult, list[int]]:
    """Fit on the first ``prefix`` points, then detect the rest ``chunk`` points at a time, each
    call carrying only its points and the state the previous call returned. Returns the joined
    result (detections, and the band of every streamed point) and the state size after each
    call."""
    state = run_fit(algorithm, times[:prefix], values[:prefix]).state
    stamps: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    bands: dict[str, list[np.ndarray]] = {"expected": [], "lower": [], "upper": []}
    sizes = []
    for start in range(prefix, times.shape[0], chunk):
        result, after = run_detect_next(
            algorithm, times[start : start + chunk], values[start : start + chunk], state
        )
        assert after is not None
        state = after.state
        sizes.append(len(state))
        stamps.append(result.timestamps)
        scores.append(result.scores)
        for name, parts in bands.items():
            band = getattr(result, name)
            parts.append(
                band if band is not None else np.full(min(chunk, times.shape[0] - start), np.nan)
            )
    joined = DetectResult(
        np.concatenate(stamps) if stamps else np.empty(0, np.int64),
        np.concatenate(scores) if scores else np.empty(0),
        *(np.concatenate(parts) if parts else np.empty(0) for parts in bands.values()),
    )
    return joined, sizes


def assert_streams_like_batch(
    algorithm: Any,
    times: np.ndarray,
    values: np.ndarray,
    prefix: int,
    chunks: tuple[int, ...] = (1, 10, 1000),
    *,
    band_rtol: float = 1e-9,
    band_scale_atol: float = 1e-8,
    compare_band: bool = True,
) -> None:
    """The detections (their times) of every streamed chunking equal the batch call's on the
    streamed points; the band agrees within ``band_rtol``, or ``band_scale_atol`` of the series'
    largest magnitude (window sums are centred differently in a chunk than over the whole
    series: rounding, never a different window), NaN where the batch has NaN."""
    batch = run_detect(algorithm, times, values)
    if prefix < times.shape[0]:
        tail = batch.timestamps >= times[prefix]
    else:
        tail = np.zeros(batch.timestamps.shape[0], dtype=bool)
    finite = np.abs(values[np.isfinite(values)])
    atol = band_scale_atol * (float(finite.max()) if finite.size else 1.0)
    for chunk in chunks:
        streamed, _ = stream(algorithm, times, values, prefix, chunk)
        np.testing.assert_array_equal(
            streamed.timestamps, batch.timestamps[tail], err_msg=f"chunk {chunk}: detections"
        )
        if compare_band and batch.expected is not None:
            for name in ("expected", "lower", "upper"):
                np.testing.assert_allclose(
                    getattr(streamed, name),
                    getattr(batch, name)[prefix:],
                    rtol=band_rtol,
                    atol=atol,
                    equal_nan=True,
                    err_msg=f"chunk {chunk}: {name}",
                )

"""One PNG per series: the values, the detector's band, its detections and the labelled windows.

matplotlib is imported here only, with the non-interactive Agg backend, so evaluating without
``--plot`` never pays for it and a machine without a display can still draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .corpus import Corpus, LabelledSeries
from .runner import Evaluation, SeriesRun


def plot_file_name(key: str) -> str:
    return key.replace("/", "__").removesuffix(".csv") + ".png"


def plot_series(path: Path, series: LabelledSeries, run: SeriesRun, algorithm: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    times = series.timestamps.astype("datetime64[s]")
    figure, axes = plt.subplots(figsize=(14, 4.5), dpi=100)
    try:
        for number, (start, end) in enumerate(series.windows):
            axes.axvspan(
                times[start],
                times[end],
                color="tab:green",
                alpha=0.15,
                label="labelled window" if number == 0 else None,
            )
        if series.probation_rows:
            axes.axvspan(
                times[0],
                times[series.probation_rows - 1],
                color="0.85",
                alpha=0.5,
                label="probation (not scored)",
            )
        band = run.band
        if band is not None and band.lower is not None and band.upper is not None:
            axes.fill_between(
                times,
                band.lower,
                band.upper,
                color="tab:blue",
                alpha=0.18,
                linewidth=0,
                label="band",
            )
        if band is not None and band.expected is not None:
            axes.plot(
                times, band.expected, color="tab:blue", linewidth=0.6, alpha=0.8, label="expected"
            )
        axes.plot(times, series.values, color="0.2", linewidth=0.6, label="value")
        if run.rows.size:
            axes.scatter(
                times[run.rows],
                series.values[run.rows],
                color="tab:red",
                s=28,
                zorder=5,
                label=f"detections ({run.rows.size})",
            )
        axes.set_title(f"{series.key} — {algorithm}", loc="left", fontsize=10)
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        finite = series.values[np.isfinite(series.values)]
        if finite.size:
            low, high = float(finite.min()), float(finite.max())
            pad = 0.08 * (high - low or abs(high) or 1.0)
            axes.set_ylim(low - pad, high + pad)  # a wild band must not flatten the series
        axes.legend(loc="upper left", fontsize=7, ncols=3)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


def plot_evaluation(directory: Path, corpus: Corpus, evaluation: Evaluation) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for series, run in zip(corpus.series, evaluation.runs, strict=True):
        path = directory / plot_file_name(series.key)
        plot_series(path, series, run, evaluation.algorithm)
        written.append(path)
    return written

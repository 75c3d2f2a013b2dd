"""NAB-style scoring of binary detections, plus window recall / precision / F1.

Follows NAB v1.1's sweeper for a fixed set of detections (no threshold sweep: the detector already
decided). Per window only the earliest detection counts, weighted by a scaled sigmoid of its
position (+1 at the window's first row, 0 just after its last); a window without detection costs
``fn``; a detection outside every window costs ``fp`` times a sigmoid of its distance past the
previous window (the full ``fp`` when no window precedes it). Detections inside the probationary
period are ignored. Window edges are the first rows bearing the labelled stamps, as upstream.
Raw sums are normalised per group so that a detector that never fires scores 0
and one that fires on every window's first row scores 100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from warden_algos.interfaces import I64Array

from .corpus import LabelledSeries


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


#: NAB's application profiles (config/profiles.json upstream).
PROFILES: tuple[Profile, ...] = (
    Profile("standard", tp=1.0, fp=0.11, fn=1.0),
    Profile("low_fp", tp=1.0, fp=0.22, fn=1.0),
    Profile("low_fn", tp=1.0, fp=0.11, fn=2.0),
)


def scaled_sigmoid(position: float) -> float:
    """NAB's weighting: +0.987 at -1 (a window's start), 0 at 0 (its end), towards -1 after."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


#: NAB divides a true positive's weight by this, so a detection on a window's first row is worth
#: exactly ``tp`` and a perfect detector scores ``tp`` per window.
MAX_TP = scaled_sigmoid(-1.0)


@dataclass(frozen=True)
class FileScore:
    key: str
    windows: int
    detections: int  # scored detections (after the probationary period)
    windows_found: int
    true_detections: int  # scored detections that lie inside some window
    raw: dict[str, float]  # per profile
    null: dict[str, float]
    perfect: dict[str, float]
    normal_points: int = 0  # scored rows outside every window: where an alert is a false alarm


@dataclass(frozen=True)
class GroupScore:
    """Sums over files, and the ratios derived from the sums (never averages of ratios)."""

    name: str
    files: int
    windows: int
    detections: int
    windows_found: int
    true_detections: int
    raw: dict[str, float]
    null: dict[str, float]
    perfect: dict[str, float]
    normal_points: int = 0

    @property
    def false_alarms(self) -> int:
        """Scored detections outside every window."""
        return self.detections - self.true_detections

    @property
    def false_alarms_per_1000(self) -> float | None:
        """False alarms per 1,000 points outside the labelled windows: how often a detector pages
        for nothing on normal stretches, whatever the windows' count or width."""
        if not self.normal_points:
            return None
        return 1000.0 * self.false_alarms / self.normal_points

    @property
    def recall(self) -> float | None:
        return self.windows_found / self.windows if self.windows else None

    @property
    def precision(self) -> float | None:
        return self.true_detections / self.detections if self.detections else None

    @property
    def f1(self) -> float | None:
        recall, precision = self.recall, self.precision
        if recall is None:
            return None
        if not precision or not recall:
            return 0.0
        return 2 * precision * recall / (precision + recall)

    @property
    def nab(self) -> dict[str, float | None]:
        """Normalised NAB score per profile; None when the group has no windows."""
        out: dict[str, float | None] = {}
        for profile in PROFILES:
            span = self.perfect[profile.name] - self.null[profile.name]
            out[profile.name] = (
                100.0 * (self.raw[profile.name] - self.null[profile.name]) / span
                if span > 0
                else None
            )
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "windows": self.windows,
            "detections": self.detections,
            "windows_found": self.windows_found,
            "true_detections": self.true_detections,
            "recall": self.recall,
            "precision": self.precision,
            "f1": self.f1,
            "nab": self.nab,
            "nab_raw": self.raw,
            "false_positives": self.false_alarms,
            "normal_points": self.normal_points,
            "false_alarms_per_1000": self.false_alarms_per_1000,
        }


def score_file(series: LabelledSeries, detection_rows: I64Array | Sequence[int]) -> FileScore:
    """Score detections given as source rows of ``series``."""
    rows = np.unique(np.asarray(detection_rows, dtype=np.int64))
    rows = rows[rows >= series.probation_rows]
    windows = series.windows
    found = [False] * len(windows)
    raw = {p.name: 0.0 for p in PROFILES}
    true_detections = 0
    for row in rows.tolist():
        weight_tp: float | None = None
        weight_fp: float | None = None
        previous: tuple[int, int] | None = None
        for index, (start, end) in enumerate(windows):
            if start <= row <= end:
                true_detections += 1
                if not found[index]:
                    found[index] = True
                    width = end - start + 1
                    weight_tp = scaled_sigmoid(-(end - row + 1) / width) / MAX_TP
                else:
                    weight_tp = 0.0
                break
            if end < row:
                previous = (start, end)
        else:
            if previous is None:
                weight_fp = scaled_sigmoid(3.0)
            else:
                width = previous[1] - previous[0] + 1
                weight_fp = scaled_sigmoid(abs(previous[1] - row) / max(width - 1, 1))
        for profile in PROFILES:
            if weight_tp is not None:
                raw[profile.name] += profile.tp * weight_tp
            elif weight_fp is not None:
                raw[profile.name] += profile.fp * weight_fp
    missed = len(windows) - sum(found)
    for profile in PROFILES:
        raw[profile.name] -= profile.fn * missed
    null = {p.name: -p.fn * len(windows) for p in PROFILES}
    perfect = {p.name: p.tp * len(windows) for p in PROFILES}
    return FileScore(
        normal_points=_normal_points(series.probation_rows, len(series), windows),
        key=series.key,
        windows=len(windows),
        detections=int(rows.size),
        windows_found=sum(found),
        true_detections=true_detections,
        raw=raw,
        null=null,
        perfect=perfect,
    )


def _normal_points(probation: int, n_rows: int, windows: Sequence[tuple[int, int]]) -> int:
    """Rows scored (after the probationary period) that no window covers (windows are
    disjoint and ordered, as NAB lays them out)."""
    covered = sum(
        max(0, min(end, n_rows - 1) - max(start, probation) + 1) for start, end in windows
    )
    return max(0, n_rows - probation - covered)


def aggregate(name: str, scores: Iterable[FileScore]) -> GroupScore:
    items = list(scores)
    return GroupScore(
        name=name,
        files=len(items),
        windows=sum(s.windows for s in items),
        detections=sum(s.detections for s in items),
        windows_found=sum(s.windows_found for s in items),
        true_detections=sum(s.true_detections for s in items),
        raw={p.name: sum(s.raw[p.name] for s in items) for p in PROFILES},
        null={p.name: sum(s.null[p.name] for s in items) for p in PROFILES},
        perfect={p.name: sum(s.perfect[p.name] for s in items) for p in PROFILES},
        normal_points=sum(s.normal_points for s in items),
    )

"""Range-aware metrics beside NAB (``evaluate``, aeon's implementation): hand-checkable cases,
the same numbers as aeon's functions called directly, the JSON and table, and a clear answer
when aeon is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from aeon.benchmarking.metrics.anomaly_detection import (
    range_f_score,
    range_precision,
    range_recall,
)

from warden_algos.cli import main
from warden_algos.evaluation import ranges
from warden_algos.evaluation.corpus import Corpus, LabelledSeries, load_corpus
from warden_algos.evaluation.ranges import file_arrays, range_scores
from warden_algos.evaluation.runner import SeriesRun, score_runs
from warden_algos.extras import EXTRAS

from .test_evaluation import _series, _tiny_corpus


def _evaluated(series: list[LabelledSeries], detections: list[list[int]]) -> ranges.RangeScores:
    corpus = Corpus(Path("."), tuple(series), "test")
    runs = [
        SeriesRun(s.key, np.asarray(rows, dtype=np.int64), np.ones(len(rows)), 0.0)
        for s, rows in zip(series, detections, strict=True)
    ]
    return range_scores(corpus, score_runs("test", {}, corpus, runs))


def _aeon(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    return (
        range_precision(truth, predicted, alpha=0.0),
        range_recall(truth, predicted, alpha=0.5),
        range_f_score(truth, predicted),
    )


def test_a_detector_covering_the_window_scores_one_and_one_missing_it_zero() -> None:
    series = _series(1000, [(500, 509)])
    exact = _evaluated([series], [list(range(500, 510))]).overall
    assert (exact.precision, exact.recall, exact.f1) == (1.0, 1.0, 1.0)
    assert (exact.real_ranges, exact.predicted_ranges) == (1, 1)
    missed = _evaluated([series], [[300, 700, 701]]).overall
    assert (missed.precision, missed.recall, missed.f1) == (0.0, 0.0, 0.0)
    assert missed.predicted_ranges == 2  # 700 and 701 are one range
    silent = _evaluated([series], [[]]).overall
    assert (silent.precision, silent.recall, silent.f1) == (None, 0.0, 0.0)


def test_one_detection_at_the_onset_earns_the_existence_reward_and_a_tenth_of_the_rest() -> None:
    onset = _evaluated([_series(1000, [(500, 509)])], [[500]]).overall
    assert onset.precision == 1.0  # the one predicted point lies in the window
    assert onset.recall == pytest.approx(0.5 + 0.5 * 1 / 10)  # existence 0.5, overlap 1 of 10
    assert onset.f1 == pytest.approx(2 * 0.55 / 1.55)
    probation = _evaluated([_series(1000, [(500, 509)])], [[100, 500]]).overall
    assert probation == onset  # a detection in the probationary period is not scored


def test_the_figures_are_aeons_on_the_scored_rows_of_the_files_joined() -> None:
    """Two files in two categories: each category and the overall figures are what aeon's own
    functions answer on hand-built arrays (scored rows, one empty row after each file)."""
    first = _series(1000, [(500, 509), (800, 849)])
    second = LabelledSeries(**{**first.__dict__, "key": "other/b.csv", "windows": ((300, 340),)})
    detections = [[505, 506, 507, 820, 950], [299, 300, 301, 302, 600]]
    scores = _evaluated([first, second], detections)

    def hand(windows: list[tuple[int, int]], rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        truth, predicted = np.zeros(1000, dtype=np.int64), np.zeros(1000, dtype=np.int64)
        for start, end in windows:
            truth[start : end + 1] = 1
        predicted[rows] = 1
        return np.r_[truth[150:], 0], np.r_[predicted[150:], 0]  # probation: 150 rows

    a = hand([(500, 509), (800, 849)], detections[0])
    b = hand([(300, 340)], detections[1])
    assert all(
        np.array_equal(x, y) for x, y in zip(file_arrays(first, detections[0]), a, strict=True)
    )
    by_hand = {
        "cat": _aeon(*a),
        "other": _aeon(*b),
        "overall": _aeon(np.r_[a[0], b[0]], np.r_[a[1], b[1]]),
    }
    got = {name: scores.categories[name] for name in ("cat", "other")} | {"overall": scores.overall}
    for name, (precision, recall, f1) in by_hand.items():
        score = got[name]
        assert (score.precision, score.recall, score.f1) == pytest.approx((precision, recall, f1))
    # and the numbers mean something: 950 and 600 are false, 299..302 half inside its window
    assert scores.categories["cat"].precision == pytest.approx((1 + 1 + 0) / 3)
    assert scores.categories["other"].precision == pytest.approx((3 / 4 + 0) / 2)


def test_evaluate_json_and_table_carry_range_metrics_per_category_and_overall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "out.json"
    code = main(
        ["evaluate", "--algorithm", "ksigma", "--params", '{"k": 6}', "--corpus", str(root),
         "--json", str(out), "--no-cache", "--range-metrics"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "range F1" in printed
    document = orjson.loads(out.read_bytes())
    assert document["range_metrics"]["computed"] is True
    assert document["range_metrics"]["range_recall"]["alpha"] == 0.5
    (start, end), = load_corpus(root).series[1].windows  # fmt: skip
    overall = document["result"]["overall"]["range"]
    # ksigma fires once, inside the spiky file's window: precision 1, the onset's recall
    assert overall["precision"] == 1.0
    assert overall["recall"] == pytest.approx(0.5 + 0.5 / (end - start + 1))
    assert document["result"]["categories"]["spiky"]["range"] == overall
    assert document["result"]["categories"]["clean"]["range"]["recall"] is None
    assert document["baselines"]["null"]["overall"]["range"]["precision"] is None


def test_without_range_metrics_the_json_says_how_to_get_them_and_a_missing_aeon_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "out.json"
    base = ["evaluate", "--algorithm", "ksigma", "--corpus", str(root), "--json", str(out)]
    assert main([*base, "--no-baselines", "--no-cache"]) == 0
    document = orjson.loads(out.read_bytes())
    assert document["range_metrics"] == {
        "computed": False,
        "why": "not asked for: add --range-metrics",
    }
    assert "range" not in document["result"]["overall"]
    assert "range F1" not in capsys.readouterr().out

    monkeypatch.setitem(EXTRAS, "ranges", ("aeon_is_not_installed",))
    monkeypatch.setattr(ranges, "installed", lambda: False)
    assert main([*base, "--no-baselines", "--no-cache"]) == 0
    assert (
        "pip install 'warden-algos[ranges]'"
        in orjson.loads(out.read_bytes())["range_metrics"]["why"]
    )
    capsys.readouterr()
    out.unlink()
    assert main([*base, "--range-metrics"]) == 2  # refused before any detection runs
    stderr = capsys.readouterr().err
    assert stderr.strip().splitlines() == [
        "warden-algos evaluate: error: --range-metrics needs the 'ranges' extra "
        "(aeon_is_not_installed is not installed): pip install 'warden-algos[ranges]'"
    ]
    assert not out.exists()

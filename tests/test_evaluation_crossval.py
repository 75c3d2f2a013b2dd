"""Cross-validated evaluation (``evaluate --cv``): folds partition the files, a setting is chosen
on the training folds only, the held-out scores add up as one corpus, an overfit choice shows as a
gap, and the command reports both scores in its table and its JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from warden_algos.evaluation.corpus import Corpus, LabelledSeries
from warden_algos.evaluation.crossval import (
    CrossValidationError,
    cross_validate,
    make_folds,
    parse_cv,
)
from warden_algos.evaluation.runner import Evaluation
from warden_algos.evaluation.scoring import PROFILES, FileScore, aggregate

from .test_evaluation import NAB, _tiny_corpus, evaluate


def _corpus(categories: dict[str, int]) -> Corpus:
    series = []
    for category, files in categories.items():
        for index in range(files):
            stamps = np.arange(10, dtype=np.int64)
            series.append(
                LabelledSeries(
                    key=f"{category}/f{index}.csv",
                    timestamp_text=tuple(map(str, stamps)),
                    timestamps=stamps,
                    values=np.zeros(10),
                    windows=((5, 6),),
                    kept_rows=stamps,
                )
            )
    return Corpus(Path("/nowhere"), tuple(series), "fingerprint")


def _file(key: str, raw: float, detections: int = 1) -> FileScore:
    """A file with one window and the given raw score under every profile."""
    return FileScore(
        key=key,
        windows=1,
        detections=detections,
        windows_found=int(raw > 0),
        true_detections=int(raw > 0),
        raw={p.name: raw for p in PROFILES},
        null={p.name: -1.0 for p in PROFILES},
        perfect={p.name: 1.0 for p in PROFILES},
    )


def _evaluation(params: dict[str, object], raws: list[float]) -> Evaluation:
    files = tuple(_file(f"f{i}", raw) for i, raw in enumerate(raws))
    return Evaluation(
        algorithm="test",
        params=params,
        runs=(),
        files=files,
        categories=(),
        overall=aggregate("overall", files),
        wall_s=0.0,
    )


def test_category_folds_leave_one_category_out() -> None:
    corpus = _corpus({"a": 2, "b": 3, "c": 1})
    folds = make_folds(corpus, "categories")
    assert [fold.name for fold in folds] == ["a", "b", "c"]
    assert [fold.held_out for fold in folds] == [(0, 1), (2, 3, 4), (5,)]


@pytest.mark.parametrize("k", [2, 3, 6])
def test_k_folds_partition_the_files_and_follow_the_seed(k: int) -> None:
    corpus = _corpus({"a": 6})
    folds = make_folds(corpus, k, seed=1)
    held = sorted(i for fold in folds for i in fold.held_out)
    assert held == list(range(6))
    assert len(folds) == k and all(fold.held_out for fold in folds)
    assert make_folds(corpus, k, seed=1) == folds
    if k < 6:
        seeds = {tuple(f.held_out for f in make_folds(corpus, k, seed=s)) for s in range(10)}
        assert len(seeds) > 1  # the seed shuffles


@pytest.mark.parametrize(
    ("text", "categories", "message"),
    [
        ("1", {"a": 3}, "at least 2 folds"),
        ("x", {"a": 3}, "'categories' or a number"),
        ("4", {"a": 3}, "needs at least 4 files"),
        ("categories", {"a": 3}, "2 or more categories"),
    ],
)
def test_impossible_folds_are_refused(text: str, categories: dict[str, int], message: str) -> None:
    with pytest.raises(CrossValidationError, match=message):
        make_folds(_corpus(categories), parse_cv(text))


def test_one_setting_cross_validates_to_its_in_sample_score() -> None:
    corpus = _corpus({"a": 2, "b": 2})
    only = _evaluation({"k": 1}, [1.0, -1.0, 0.5, 0.0])
    cross = cross_validate([only], make_folds(corpus, "categories"), "categories")
    assert cross.nab() == cross.in_sample_nab() == only.overall.nab


def test_a_setting_that_only_wins_on_one_category_is_caught() -> None:
    """Setting A is perfect on categories a and b and poor on c; B is fair everywhere. In sample A
    wins; held out, a and b are each scored with what the other two chose (B: c drags A down),
    and c with A, its worst setting."""
    corpus = _corpus({"a": 2, "b": 2, "c": 2})
    specialist = _evaluation({"name": "A"}, [1.0, 1.0, 1.0, 1.0, -0.5, -0.5])
    generalist = _evaluation({"name": "B"}, [0.4, 0.4, 0.4, 0.4, 0.4, 0.4])
    cross = cross_validate([specialist, generalist], make_folds(corpus, "categories"), "categories")
    in_sample, held = cross.in_sample_nab()["standard"], cross.nab()["standard"]
    assert cross.in_sample["standard"][0] == {"name": "A"}
    assert in_sample == pytest.approx(100 * (3.0 + 6) / 12)
    chosen = {choice.fold: choice.params["name"] for choice in cross.choices["standard"]}
    assert chosen == {"a": "B", "b": "B", "c": "A"}
    # held out: a under B (0.4 + 0.4), b under B (0.8), c under A (-1.0)
    assert held == pytest.approx(100 * (0.8 + 0.8 - 1.0 + 6) / 12)
    assert held is not None and in_sample is not None and held < in_sample


def test_ties_go_to_fewer_detections_then_grid_order() -> None:
    corpus = _corpus({"a": 1, "b": 1})
    first = _evaluation({"name": "first"}, [0.5, 0.5])
    second = _evaluation({"name": "second"}, [0.5, 0.5])
    cross = cross_validate([first, second], make_folds(corpus, "categories"), "categories")
    assert {c.params["name"] for c in cross.choices["standard"]} == {"first"}
    quieter = Evaluation(
        algorithm="test",
        params={"name": "quieter"},
        runs=(),
        files=tuple(_file(f"f{i}", 0.5, detections=0) for i in range(2)),
        categories=(),
        overall=aggregate("overall", []),
        wall_s=0.0,
    )
    cross = cross_validate([first, quieter], make_folds(corpus, "categories"), "categories")
    assert {c.params["name"] for c in cross.choices["standard"]} == {"quieter"}


def test_evaluate_cv_reports_both_scores_in_the_table_and_the_json(tmp_path: Path) -> None:
    out = tmp_path / "cv.json"
    result = evaluate(
        "--algorithm", "ksigma", "--corpus", str(NAB), "--grid", '{"k": [4.0, 6.0]}',
        "--cv", "categories", "--json", str(out), "--no-baselines",
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cross-validated (--cv categories)" in result.stdout
    assert "the setting each fold chose" in result.stdout
    document = orjson.loads(out.read_bytes())
    cv = document["cross_validation"]
    assert cv["scheme"] == "categories"
    assert cv["in_sample_nab"]["standard"] == pytest.approx(
        document["result"]["overall"]["nab"]["standard"]
    )
    folds = cv["profiles"]["standard"]["folds"]
    assert [fold["fold"] for fold in folds] == sorted(
        {key.split("/")[0] for key in document["result"]["files"]}
    )
    assert all(fold["params"]["k"] in (4.0, 6.0) for fold in folds)
    assert cv["nab"]["standard"] <= cv["in_sample_nab"]["standard"] + 1e-9


def test_evaluate_cv_refusals_are_one_line(tmp_path: Path) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    for cv, message in (("1", "at least 2 folds"), ("9", "needs at least 9 files")):
        result = evaluate("--algorithm", "ksigma", "--corpus", str(root), "--no-cache", "--cv", cv)
        assert result.returncode == 2
        assert message in result.stderr and "Traceback" not in result.stderr

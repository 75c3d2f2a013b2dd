"""evaluate on files with several value columns: a multivariate detector scores the matrix, any
other detector each column (its detections merged): the per-column baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from warden_algos.evaluation.corpus import CorpusError, load_corpus
from warden_algos.evaluation.runner import evaluate_algorithm


def write_machine(path: Path, n: int = 3000) -> Path:
    """Three correlated sensors, labelled where the outlet stops following the cycle (every
    value still inside its normal range: no single column shows it)."""
    rng = np.random.default_rng(0)
    cycle = np.sin(np.arange(n) * 2 * np.pi / 288)
    matrix = np.column_stack([10 + cycle, 5 + 2 * cycle, 3 - cycle]) + rng.normal(0, 0.05, (n, 3))
    broken = np.arange(2200, 2230)
    matrix[broken, 1] = 5 - 2 * np.sin(broken * 2 * np.pi / 288)
    label = np.zeros(n, dtype=int)
    label[broken] = 1
    stamps = np.datetime64("2024-01-01T00:00:00") + np.arange(n) * np.timedelta64(5, "m")
    lines = ["timestamp,inlet,outlet,pump,label"]
    for stamp, row, flag in zip(stamps, matrix, label, strict=True):
        text = str(stamp).replace("T", " ")
        lines.append(f"{text},{row[0]:.6f},{row[1]:.6f},{row[2]:.6f},{flag}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_file_of_several_columns_is_one_multivariate_series(tmp_path: Path) -> None:
    corpus = load_corpus(write_machine(tmp_path / "machine.csv"))
    series = corpus.series[0]
    assert series.columns == ("inlet", "outlet", "pump")
    assert series.matrix is not None and series.matrix.shape == (3000, 3)
    assert series.values.tolist() == series.matrix[:, 0].tolist()
    assert len(series.windows) == 1


def test_the_multivariate_detector_finds_what_no_column_shows(tmp_path: Path) -> None:
    corpus = load_corpus(write_machine(tmp_path / "machine.csv"))
    joint = evaluate_algorithm("one_class_svm", {"sigmas": 6.0}, corpus)
    assert not joint.errors
    assert joint.overall.windows_found == 1
    per_column = evaluate_algorithm("mad", {}, corpus)  # each column alone, merged
    assert not per_column.errors
    assert per_column.overall.windows_found == 0
    assert (joint.overall.f1 or 0.0) > (per_column.overall.f1 or 0.0)


def test_evaluate_cli_scores_a_multivariate_file_beside_the_baselines(tmp_path: Path) -> None:
    path = write_machine(tmp_path / "machine.csv")
    out = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "warden_algos", "evaluate", "--algorithm", "autoencoder",
            "--corpus", str(path), "--json", str(out), "--no-cache",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    document = orjson.loads(out.read_bytes())
    assert document["result"]["overall"]["windows_found"] == 1
    assert set(document["baselines"]) >= {"null", "random", "windowed_gaussian"}


@pytest.mark.parametrize(
    ("header", "message"),
    [("timestamp,a,a,label", "named twice"), ("time,a,label", "header must be")],
)
def test_a_malformed_multivariate_header_is_refused(
    tmp_path: Path, header: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{header}\n2024-01-01 00:00:00,1,2,0\n")
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)

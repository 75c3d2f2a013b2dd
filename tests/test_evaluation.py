"""The evaluation harness: corpus quirks, the NAB scorer against hand calculations, the CLI's
outputs (table, JSON, detections CSV, plots), grid search with its cache, and baselines."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import orjson
import pytest

from warden_algos.evaluation.corpus import (
    CorpusError,
    LabelledSeries,
    increasing_rows,
    load_corpus,
    nab_windows,
    probation_rows,
)
from warden_algos.evaluation.runner import evaluate_algorithm
from warden_algos.evaluation.scoring import MAX_TP, aggregate, scaled_sigmoid, score_file

from .conftest import cli


class Outcome(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def evaluate(*args: str, env: dict[str, str] | None = None) -> Outcome:
    done = cli("evaluate", *args, env=env, timeout=120)
    return Outcome(done.returncode, done.stdout.decode(), done.stderr.decode())


NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


def _series(n: int, windows: list[tuple[int, int]]) -> LabelledSeries:
    stamps = 1_400_000_000 + 300 * np.arange(n, dtype=np.int64)
    return LabelledSeries(
        key="cat/file.csv",
        timestamp_text=tuple(str(t) for t in stamps),
        timestamps=stamps,
        values=np.zeros(n),
        windows=tuple(windows),
        kept_rows=np.arange(n, dtype=np.int64),
    )


# -- scorer ---------------------------------------------------------------------------------------


def test_detection_on_a_windows_first_row_is_worth_exactly_one() -> None:
    score = score_file(_series(1000, [(500, 509)]), [500])
    assert score.raw["standard"] == pytest.approx(1.0)
    assert aggregate("x", [score]).nab["standard"] == pytest.approx(100.0)


def test_late_detection_is_worth_less_and_only_the_first_in_a_window_counts() -> None:
    late = score_file(_series(1000, [(500, 509)]), [509])
    expected = (2 / (1 + math.exp(5 * -0.1)) - 1) / MAX_TP
    assert late.raw["standard"] == pytest.approx(expected)
    both = score_file(_series(1000, [(500, 509)]), [505, 509])
    alone = score_file(_series(1000, [(500, 509)]), [505])
    assert both.raw == alone.raw
    assert both.true_detections == 2 and both.windows_found == 1


def test_false_positives_cost_fp_weight_less_just_after_a_window() -> None:
    series = _series(1000, [(500, 509)])
    before = score_file(series, [300])  # no window before it: the full cost
    assert before.raw["standard"] == pytest.approx(-1.0 + 0.11 * scaled_sigmoid(3.0))
    assert before.raw["low_fp"] == pytest.approx(-1.0 + 0.22 * scaled_sigmoid(3.0))
    assert before.raw["low_fn"] == pytest.approx(-2.0 + 0.11 * scaled_sigmoid(3.0))
    just_after = score_file(series, [500, 510])
    penalty = 0.11 * (2 / (1 + math.exp(5 * (1 / 9))) - 1)
    assert just_after.raw["standard"] == pytest.approx(1.0 + penalty)
    assert -0.11 < penalty < 0


def test_probationary_detections_are_ignored() -> None:
    series = _series(1000, [(500, 509)])
    assert probation_rows(1000) == 150 and probation_rows(100_000) == 750
    score = score_file(series, [10, 149])
    assert score.detections == 0 and score.raw["standard"] == -1.0
    assert score_file(series, [150]).detections == 1


def test_missed_windows_and_normalisation() -> None:
    series = _series(2000, [(500, 509), (1500, 1599)])
    none = aggregate("x", [score_file(series, [])])
    assert none.nab == {"standard": 0.0, "low_fp": 0.0, "low_fn": 0.0}
    half = aggregate("x", [score_file(series, [500])])
    assert half.nab["standard"] == pytest.approx(50.0)
    assert half.recall == 0.5 and half.precision == 1.0
    assert half.f1 == pytest.approx(2 / 3)


# -- corpus ---------------------------------------------------------------------------------------


def _write(path: Path, text: str, newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode())


def _tiny_corpus(root: Path) -> Path:
    """Two files: one CRLF with a repeated timestamp and a spike in its window, one clean."""
    rng = np.random.default_rng(0)
    lines = ["timestamp,value"]
    start = np.datetime64("2020-01-01T00:00:00")
    values = 10 + rng.normal(0, 0.1, 600)
    values[450] = 40.0
    for i, value in enumerate(values):
        stamp = start + np.timedelta64(5 * 60 * i, "s")
        lines.append(f"{str(stamp).replace('T', ' ')},{value:.4f}")
    lines.insert(201, lines[200])  # a repeated row, as upstream files have
    _write(root / "data" / "spiky" / "one.csv", "\n".join(lines) + "\n", newline="\r\n")
    clean = ["timestamp,value"] + [
        f"{str(start + np.timedelta64(3600 * i, 's')).replace('T', ' ')},{1 + 0.01 * (i % 7)}"
        for i in range(400)
    ]
    _write(root / "data" / "clean" / "two.csv", "\n".join(clean) + "\n")
    window = [
        str(start + np.timedelta64(5 * 60 * 430, "s")).replace("T", " ") + ".000000",
        str(start + np.timedelta64(5 * 60 * 470, "s")).replace("T", " ") + ".000000",
    ]
    _write(
        root / "labels" / "combined_windows.json",
        orjson.dumps({"spiky/one.csv": [window], "clean/two.csv": []}).decode(),
    )
    return root


def test_tiny_corpus_loads_crlf_and_repeated_rows(tmp_path: Path) -> None:
    corpus = load_corpus(_tiny_corpus(tmp_path))
    one = {s.key: s for s in corpus.series}["spiky/one.csv"]
    assert len(one) == 601 and len(one.kept_rows) == 600  # the repeat is kept as a row only
    assert one.windows == ((431, 471),)  # shifted by the repeated row
    assert corpus.categories() == ["clean", "spiky"]


def test_increasing_rows_drops_repeats_and_clock_steps_back() -> None:
    stamps = np.array([1, 2, 2, 3, 1, 2, 4, 5], dtype=np.int64)
    assert increasing_rows(stamps).tolist() == [0, 1, 3, 6, 7]


def test_corpus_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not a corpus"):
        load_corpus(tmp_path)
    root = _tiny_corpus(tmp_path / "c")
    (root / "labels" / "combined_windows.json").write_text('{"spiky/one.csv": []}')
    with pytest.raises(CorpusError, match=r"clean/two\.csv: no entry"):
        load_corpus(root)


def test_single_csv_with_labels_gets_nab_windows(tmp_path: Path) -> None:
    lines = ["timestamp,value,label"] + [
        f"2021-01-01 {i // 60:02d}:{i % 60:02d}:00,{float(i == 900) * 9},{int(i == 900)}"
        for i in range(1200)
    ]
    path = tmp_path / "one.csv"
    _write(path, "\n".join(lines) + "\n")
    corpus = load_corpus(path)
    (series,) = corpus.series
    assert series.windows == ((840, 960),)
    assert nab_windows(1000, [10]) == []  # inside probation: never scored


@pytest.mark.skipif(not NAB.is_dir(), reason="../shared/data/nab is provided by CI")
def test_shared_nab_corpus_matches_its_readme() -> None:
    corpus = load_corpus(NAB)
    assert (len(corpus.series), corpus.n_rows, corpus.n_windows) == (31, 139_187, 53)
    dropped = {
        s.key: len(s) - len(s.kept_rows) for s in corpus.series if len(s) != len(s.kept_rows)
    }
    assert dropped["realKnownCause/machine_temperature_system_failure.csv"] == 12
    assert dropped["realKnownCause/ec2_request_latency_system_failure.csv"] == 11
    for series in corpus.series:
        assert all(start >= series.probation_rows for start, _ in series.windows)


# -- runs, baselines, determinism -------------------------------------------------------------


def test_ksigma_finds_the_tiny_spike_and_baselines_bracket_it(tmp_path: Path) -> None:
    corpus = load_corpus(_tiny_corpus(tmp_path))
    found = evaluate_algorithm("ksigma", {"k": 6.0}, corpus)
    assert found.overall.windows_found == 1 and found.overall.nab["standard"] > 90
    assert evaluate_algorithm("null", {}, corpus).overall.nab["standard"] == 0.0
    first = evaluate_algorithm("random", {"rate": 0.05}, corpus)
    again = evaluate_algorithm("random", {"rate": 0.05}, corpus)
    assert first.runs[0].rows.tolist() == again.runs[0].rows.tolist() != []


def test_a_failing_file_is_reported_not_fatal(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    corpus = load_corpus(_tiny_corpus(tmp_path))
    result = evaluate(
        "--algorithm", "test_crash", "--corpus", str(tmp_path), "--no-cache", env=plugin_env
    )
    assert result.returncode == 1, result.stderr
    assert "warning: spiky/one.csv: ValueError: boom from test_crash" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(corpus.series) == 2 and "overall" in result.stdout


# -- the command ----------------------------------------------------------------------------------


def test_evaluate_command_writes_table_json_detections_and_plots(tmp_path: Path) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "out.json"
    detections = tmp_path / "det.csv"
    plots = tmp_path / "plots"
    result = evaluate(
            "--algorithm", "ksigma", "--params", '{"k": 6}', "--corpus", str(root),
            "--json", str(out), "--detections-out", str(detections), "--plot", str(plots),
            "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("ksigma", "null", "random", "windowed_gaussian", "overall", "NAB standard"):
        assert name in result.stdout
    document = orjson.loads(out.read_bytes())
    assert document["params"]["k"] == 6.0
    assert set(document["baselines"]) == {"null", "random", "windowed_gaussian"}
    assert document["result"]["overall"]["windows_found"] == 1
    assert set(document["result"]["files"]) == {"spiky/one.csv", "clean/two.csv"}
    with detections.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "timestamp", "score"]
    assert ["spiky/one.csv", "2020-01-02 13:30:00"] in [row[:2] for row in rows[1:]]
    pngs = sorted(p.name for p in plots.iterdir())
    assert pngs == ["clean__two.png", "spiky__one.png"]
    assert all((plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in pngs)


def test_detections_csv_rescores_to_the_same_result(tmp_path: Path) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    out, detections = tmp_path / "out.json", tmp_path / "det.csv"
    args = ["--algorithm", "ksigma", "--params", '{"k": 2.5}', "--corpus", str(root)]
    result = evaluate(*args, "--json", str(out), "--detections-out", str(detections), "--no-cache")
    assert result.returncode == 0, result.stderr
    corpus = load_corpus(root)
    by_key = {s.key: s for s in corpus.series}
    rows: dict[str, list[int]] = {key: [] for key in by_key}
    with detections.open() as handle:
        for record in csv.DictReader(handle):
            series = by_key[record["file"]]
            rows[record["file"]].append(series.timestamp_text.index(record["timestamp"]))
    rescored = aggregate("all", [score_file(s, rows[s.key]) for s in corpus.series])
    reported = orjson.loads(out.read_bytes())["result"]["overall"]
    assert rescored.detections == reported["detections"] > 1
    assert rescored.nab["standard"] == pytest.approx(reported["nab"]["standard"])
    # The file holds every detection; the table counts only scored ones, and the command says
    # how many fell in the probationary period, so the two numbers reconcile.
    written = sum(len(found) for found in rows.values())
    in_probation = sum(
        sum(row < by_key[key].probation_rows for row in found) for key, found in rows.items()
    )
    assert in_probation > 0  # the case is real: k=2.5 fires early too
    assert (
        f"{written} detections written to {detections}, {in_probation} of them in the "
        "probationary period"
    ) in result.stderr
    assert f"the table counts {reported['detections']}" in result.stderr


def test_grid_reports_the_best_setting_and_a_rerun_hits_the_cache(tmp_path: Path) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "grid.json"
    args = [
        "--algorithm", "ksigma", "--corpus", str(root), "--grid",
        '{"k": [1.5, 6.0, 3.0]}', "--json", str(out), "--cache-dir", str(tmp_path / "cache"),
        "--no-baselines",
    ]  # fmt: skip
    first = evaluate(*args)
    assert first.returncode == 0, first.stderr
    grid = orjson.loads(out.read_bytes())["grid"]
    assert grid[0]["params"]["k"] == 6.0
    scores = [row["nab"]["standard"] for row in grid]
    assert scores == sorted(scores, reverse=True)
    assert not any(row["cached"] for row in grid)
    assert "3/3" in first.stderr  # the progress bar's final state
    second = evaluate(*args)
    assert second.returncode == 0, second.stderr
    assert all(row["cached"] for row in orjson.loads(out.read_bytes())["grid"])


def test_a_grid_table_that_stops_early_says_how_many_rows_it_hides(tmp_path: Path) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    ks = [1.5 + 0.5 * step for step in range(18)]
    args = ["--algorithm", "ksigma", "--corpus", str(root), "--grid", orjson.dumps({"k": ks})]
    result = evaluate(*(a if isinstance(a, str) else a.decode() for a in args), "--no-baselines",
                      "--cache-dir", str(tmp_path / "cache"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "18 settings, best first" in result.stdout
    assert "3 lower-ranked settings not shown" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--algorithm", "nope"], "no algorithm named 'nope'"),
        (["--algorithm", "ksigma", "--params", "{"], "--params is not valid JSON"),
        (["--algorithm", "ksigma", "--params", '{"k": -1}'], "params.k"),
        (["--algorithm", "ksigma", "--grid", '{"k": 3}'], "must be a non-empty list"),
        (["--algorithm", "ksigma", "--grid", '{"k": [3, -1]}'], "params.k"),
    ],
)
def test_bad_arguments_get_one_clear_line(tmp_path: Path, extra: list[str], message: str) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    result = evaluate("--corpus", str(root), "--no-cache", *extra)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_rca_algorithms_are_evaluated_on_synthetic_cases(tmp_path: Path) -> None:
    out = tmp_path / "rca.json"
    result = evaluate("--algorithm", "adtributor", "--cases", "40", "--json", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("adtributor", "deviation", "correlation", "top-1", "difficulty"):
        assert name in result.stdout
    document = orjson.loads(out.read_bytes())
    assert document["result"]["n_cases"] == 40
    assert document["result"]["top1"] >= 0.9
    assert document["result"]["top3"] >= document["result"]["top1"]
    assert set(document["others"]) == {"deviation", "correlation", "graph_residual"}
    assert document["difficulty"]["n_dimensions"] >= 3
    hard = evaluate(
        "--algorithm", "deviation", "--cases", "10", "--difficulty", "hard", "--json", str(out)
    )
    assert hard.returncode == 0, hard.stderr
    harder = orjson.loads(out.read_bytes())
    assert harder["difficulty_name"] == "hard"
    assert harder["difficulty"] != document["difficulty"]


def _without_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in ("wall_s", "seconds")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


@pytest.mark.parametrize("algorithm", ["novelty", "ensemble", "random"])
def test_a_run_is_deterministic(tmp_path: Path, algorithm: str) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    documents = []
    for attempt in range(2):
        out = tmp_path / f"run{attempt}.json"
        result = evaluate(
            "--algorithm", algorithm, "--corpus", str(root), "--no-cache", "--json", str(out)
        )
        assert result.returncode == 0, result.stderr
        documents.append(_without_timings(orjson.loads(out.read_bytes())))
    assert documents[0] == documents[1]


def test_grid_in_parallel_matches_the_sequential_grid(tmp_path: Path) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    grids = []
    for jobs in ("1", "2"):
        out = tmp_path / f"grid{jobs}.json"
        args = ["--algorithm", "mad", "--corpus", str(root), "--grid", '{"k": [2.5, 4.0, 6.0]}']
        result = evaluate(*args, "--jobs", jobs, "--no-cache", "--no-baselines", "--json", str(out))
        assert result.returncode == 0, result.stderr
        grids.append(_without_timings(orjson.loads(out.read_bytes())["grid"]))
    assert grids[0] == grids[1]

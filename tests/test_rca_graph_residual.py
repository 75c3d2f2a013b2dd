"""graph_residual: a propagated effect is explained away by the graph; JSON-lines case files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from warden_algos.algorithms.deviation import Deviation
from warden_algos.algorithms.graph_residual import GraphResidual
from warden_algos.evaluation.rca_cases import CaseFileError, read_cases, write_cases
from warden_algos.evaluation.rca_synthetic import RcaCase, evaluate_rca
from warden_algos.interfaces import TimeSeries, run_rca
from warden_algos.interfaces.errors import WardenError

T0 = 1_700_000_000
NORMAL, ANOMALOUS = 600, 20


def chain_case(seed: int, square: bool = False) -> RcaCase:
    """root -> mid -> leaf -> total (and a bystander): the fault shifts root's own noise; mid
    amplifies it (x3, or squares it), so mid and leaf leave their bands further than root."""
    rng = np.random.default_rng(seed)
    n = NORMAL + ANOMALOUS
    fault = np.zeros(n)
    fault[NORMAL:] = 4.0
    root = rng.normal(0, 1, n) + fault
    mid = (0.5 * root**2 if square else 3.0 * root) + 0.3 * rng.normal(0, 1, n)
    leaf = 2.0 * mid + 0.3 * rng.normal(0, 1, n)
    total = leaf + rng.normal(0, 1, n)
    bystander = rng.normal(0, 1, n)
    times = T0 + 60 * np.arange(n, dtype=np.int64)

    def series(name: str, values: np.ndarray) -> TimeSeries:
        return TimeSeries({"metric": name}, times, values)

    key = {name: f"metric={name}" for name in ("root", "mid", "leaf", "total", "bystander")}
    return RcaCase(
        metric_of_interest=series("total", total),
        related_metrics=[
            series("leaf", leaf),
            series("mid", mid),
            series("root", root),
            series("bystander", bystander),
        ],
        anomalies=times[NORMAL:],
        root_causes=(key["root"],),
        root_dimension="metric",
        factor=4.0,
        total_effect=0.0,
        graph=(
            (key["root"], key["mid"]),
            (key["mid"], key["leaf"]),
            (key["leaf"], key["total"]),
        ),
    )


def ranked(algorithm: object, case: RcaCase, graph: bool = True) -> list[str]:
    result = run_rca(
        algorithm,  # type: ignore[arg-type]
        case.metric_of_interest,
        case.related_metrics,
        4,
        case.anomalies,
        graph=list(case.graph or ()) if graph else None,
    )
    return [key for key, _ in result.contributions]


@pytest.mark.parametrize("square", [False, True], ids=["linear", "square"])
def test_the_graph_explains_the_propagated_effect_away(square: bool) -> None:
    case = chain_case(1, square)
    plain = ranked(Deviation(), case, graph=False)
    assert plain[0] != "metric=root"  # without the graph an amplified descendant leads
    result = run_rca(
        GraphResidual(),
        case.metric_of_interest,
        case.related_metrics,
        4,
        case.anomalies,
        graph=list(case.graph or ()),
    )
    scores = dict(result.contributions)
    assert result.contributions[0][0] == "metric=root", scores
    assert max(scores["metric=mid"], scores["metric=leaf"]) < scores["metric=root"] / 3


def test_without_a_graph_it_answers_as_deviation() -> None:
    case = chain_case(2)
    same = Deviation(aggregate="mean", min_baseline_points=10)
    assert ranked(GraphResidual(), case, graph=False) == ranked(same, case, graph=False)


def test_it_finds_roots_on_many_cases_and_deviation_does_not() -> None:
    cases = [chain_case(seed, square=seed % 2 == 1) for seed in range(20)]
    assert evaluate_rca(GraphResidual, {}, cases).top1 == 1.0
    without = [case._replace(graph=None) for case in cases]
    assert evaluate_rca(Deviation, {}, without).top1 < 0.5


def test_deviation_gives_a_near_tie_to_the_ancestor() -> None:
    case = chain_case(1)
    ranked_alone = run_rca(Deviation(), *_args(case), graph=None).contributions
    (leader, most), scores = ranked_alone[0], dict(ranked_alone)
    assert leader in ("metric=mid", "metric=leaf")  # a descendant leads without the graph
    margin = most / scores["metric=root"] - 1 + 1e-6  # a margin that makes it a near tie
    tied = run_rca(Deviation(tie_margin=margin), *_args(case), graph=list(case.graph or ()))
    assert tied.contributions[0][0] == "metric=root"
    untied = run_rca(Deviation(tie_margin=0), *_args(case), graph=list(case.graph or ()))
    assert untied.contributions[0][0] != "metric=root"


def _args(case: RcaCase) -> tuple[TimeSeries, list[TimeSeries], int, np.ndarray]:
    return case.metric_of_interest, case.related_metrics, 4, case.anomalies


def test_deviations_seasonal_baseline_sees_through_a_daily_cycle() -> None:
    """A metric with a large daily cycle moves by 8 of its noise at the anomaly; another with no
    cycle by 2.5: against the whole history the cycle hides the first; against the same time on
    the previous days it is the clear first."""
    rng = np.random.default_rng(8)
    n = 4 * 288  # four days of 5-minute points
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    phase = 2 * np.pi * np.arange(n) / 288
    cyclic = 100 * np.sin(phase + 1.0) + rng.normal(0, 1, n)
    flat = rng.normal(0, 1, n)
    anomaly = np.arange(n - 6, n)
    cyclic[anomaly] += 8.0
    flat[anomaly] += 2.5
    moi = TimeSeries({"metric": "total"}, times, cyclic + flat)
    related = [
        TimeSeries({"metric": "cyclic"}, times, cyclic),
        TimeSeries({"metric": "flat"}, times, flat),
    ]
    history = run_rca(Deviation(baseline="history"), moi, related, 2, times[anomaly])
    seasonal = run_rca(Deviation(), moi, related, 2, times[anomaly])
    assert history.contributions[0][0] == "metric=flat"
    assert seasonal.contributions[0][0] == "metric=cyclic"
    assert dict(seasonal.contributions)["metric=cyclic"] > 3


def test_missing_points_and_a_parent_on_another_grid_still_score() -> None:
    case = chain_case(3)
    mid = case.related_metrics[1]
    holes = mid.values.copy()
    holes[::7] = np.nan
    shifted = TimeSeries(mid.dimensions, mid.times + 5, holes)  # 5 s off the others' grid
    related = [case.related_metrics[0], shifted, *case.related_metrics[2:]]
    result = run_rca(
        GraphResidual(tolerance_s=10),
        case.metric_of_interest,
        related,
        4,
        case.anomalies,
        graph=list(case.graph or ()),
    )
    assert result.contributions[0][0] == "metric=root"


def test_its_estimate_grows_with_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    times = T0 + 60 * np.arange(2000, dtype=np.int64)
    metrics = [TimeSeries({"m": str(i)}, times, rng.normal(0, 1, 2000)) for i in range(30)]
    keys = [series.key for series in metrics]
    dense = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]]
    monkeypatch.setenv("WARDEN_MAX_REQUEST_MOPS", "100")
    args = (metrics[0], metrics[1:], 4, times[-5:])
    run_rca(GraphResidual(), *args, graph=dense[:40])  # a sparse graph: within the budget
    with pytest.raises(WardenError, match="million operations"):
        run_rca(GraphResidual(), *args, graph=dense)  # every pair: 435 edges, 59 features


def test_case_files_round_trip_with_their_graph(tmp_path: Path) -> None:
    cases = [chain_case(seed) for seed in range(3)]
    path = tmp_path / "cases.jsonl"
    assert write_cases(path, cases) == 3
    back = read_cases(path)
    assert [c.root_causes for c in back] == [c.root_causes for c in cases]
    assert [c.graph for c in back] == [c.graph for c in cases]
    np.testing.assert_array_equal(
        back[0].related_metrics[2].values, cases[0].related_metrics[2].values
    )
    assert evaluate_rca(GraphResidual, {}, back).top1 == 1.0


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"{not json", "line 2: not JSON"),
        (b'{"request": {}}', 'exactly "request" and "root_causes"'),
        (b'{"request": {}, "root_causes": []}', "non-empty list"),
        (b'{"request": {"interface": "rca"}, "root_causes": ["metric=root"]}', "line 2: "),
    ],
)
def test_a_bad_case_line_names_its_line(tmp_path: Path, line: bytes, says: str) -> None:
    path = tmp_path / "cases.jsonl"
    write_cases(path, [chain_case(5)])
    good = path.read_bytes()
    path.write_bytes(good + line)
    with pytest.raises(CaseFileError, match=says.replace("(", r"\(")):
        read_cases(path)


def test_an_unknown_root_cause_and_an_overlong_line_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    write_cases(path, [chain_case(6)])
    wrong = path.read_bytes().replace(b'"root_causes":["metric=root"]', b'"root_causes":["x=y"]')
    path.write_bytes(wrong)
    with pytest.raises(CaseFileError, match="no related metric's key"):
        read_cases(path)
    with pytest.raises(CaseFileError, match="longer than 100 bytes"):
        read_cases(path, max_line_bytes=100)


def test_evaluate_scores_a_case_file(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    write_cases(path, [chain_case(seed) for seed in range(6)])
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "warden_algos", "evaluate", "--algorithm", "graph_residual"]
    done = subprocess.run(
        [*command, "--rca-cases", str(path), "--json", str(out)],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"6 cases from" in done.stdout
    document = orjson.loads(out.read_bytes())
    assert document["result"]["top1"] == 1.0 and document["cases_file"] == str(path)
    assert {"deviation", "correlation", "adtributor"} <= set(document["others"])
    path.write_bytes(b'{"request": 1, "root_causes": ["a"]}\n')
    bad = subprocess.run(
        [*command, "--rca-cases", str(path)], capture_output=True, env=env, timeout=120, check=False
    )
    assert bad.returncode == 2 and b"line 1" in bad.stderr and b"Traceback" not in bad.stderr

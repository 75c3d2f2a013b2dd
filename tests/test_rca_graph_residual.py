"""graph_residual: a propagated effect is explained away by the graph; JSON-lines case files."""

from __future__ import annotations

import itertools
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


def _scores(
    algorithm: object, case: RcaCase, graph: list[tuple[str, str]] | None
) -> dict[str, float]:
    result = run_rca(algorithm, *_args(case), graph=graph)  # type: ignore[arg-type]
    return dict(result.contributions)


@pytest.mark.parametrize("state", ["all_missing", "other_grid", "only_at_the_anomaly"])
def test_a_parent_with_nothing_to_fit_on_leaves_the_child_scored(state: str) -> None:
    case = chain_case(9)
    root = case.related_metrics[2]
    n = root.times.shape[0]
    values = np.random.default_rng(9).normal(0, 1, n)
    times = root.times
    if state == "all_missing":
        values[:] = np.nan
    elif state == "other_grid":
        times = times + 10_000
    else:
        values[:NORMAL] = np.nan
    parent = TimeSeries({"metric": "p"}, times, values)
    related = [*case.related_metrics, parent]
    graph = [*(case.graph or ()), ("metric=p", "metric=root")]
    result = run_rca(
        GraphResidual(), case.metric_of_interest, related, 5, case.anomalies, graph=graph
    )
    scores = dict(result.contributions)
    assert result.contributions[0][0] == "metric=root", scores
    assert {"metric=mid", "metric=leaf"} <= set(scores)


def test_an_empty_graph_scores_like_no_graph_over_days() -> None:
    """Parentless metrics are scored as deviation scores them, seasonal baseline included: over
    four days of a daily cycle, no graph and an empty one agree, and both follow deviation."""
    rng = np.random.default_rng(10)
    n = 4 * 288
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    cyclic = 100 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1, n)
    flat = rng.normal(0, 1, n)
    cyclic[-6:] += 8.0
    flat[-6:] += 2.5
    moi = TimeSeries({"metric": "total"}, times, cyclic + flat)
    related = [TimeSeries({"m": "cyclic"}, times, cyclic), TimeSeries({"m": "flat"}, times, flat)]
    none = run_rca(GraphResidual(), moi, related, 2, times[-6:])
    empty = run_rca(GraphResidual(), moi, related, 2, times[-6:], graph=[])
    same = run_rca(Deviation(min_baseline_points=10), moi, related, 2, times[-6:])
    assert none.contributions == empty.contributions == same.contributions
    assert none.contributions[0][0] == "m=cyclic"


def test_huge_magnitudes_are_scored_not_dropped() -> None:
    case = chain_case(11)
    big = [
        TimeSeries(s.dimensions, s.times, s.values * (1e300 if s.key == "metric=mid" else 1.0))
        for s in case.related_metrics
    ]
    huge = case._replace(related_metrics=big)
    scores = _scores(GraphResidual(), huge, list(huge.graph or ()))
    assert {"metric=root", "metric=mid", "metric=leaf"} <= set(scores)
    assert all(np.isfinite(v) for v in scores.values())
    assert max(scores, key=scores.__getitem__) == "metric=root"


def test_a_point_without_an_earlier_season_is_judged_on_the_history() -> None:
    """A cyclic metric missing at one anomaly's time of day on the previous days does nothing
    unusual: it must not outrank the metric that moved."""
    rng = np.random.default_rng(12)
    n = 4 * 288
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    cyclic = 100 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1, n)
    flat = rng.normal(0, 1, n)
    flat[-6:] += 6.0
    for day in (1, 2, 3):
        cyclic[n - 1 - 288 * day] = np.nan
    moi = TimeSeries({"metric": "total"}, times, cyclic + flat)
    related = [TimeSeries({"m": "cyclic"}, times, cyclic), TimeSeries({"m": "flat"}, times, flat)]
    result = run_rca(Deviation(), moi, related, 2, times[-6:])
    assert result.contributions[0][0] == "m=flat", result.contributions


def test_a_day_and_a_bit_of_history_keeps_the_whole_history_as_baseline() -> None:
    """Four points past one day would make a seasonal band of four errors: pure noise would then
    score high now and then. With fewer than 30 the history is the baseline, as 'history'."""
    times = T0 + 300 * np.arange(292, dtype=np.int64)
    worst = 0.0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        moi = TimeSeries({"metric": "total"}, times, rng.normal(0, 1, 292))
        related = [TimeSeries({"m": "noise"}, times, rng.normal(0, 1, 292))]
        seasonal = run_rca(Deviation(), moi, related, 1, times[-2:])
        history = run_rca(Deviation(baseline="history"), moi, related, 1, times[-2:])
        assert seasonal.contributions == history.contributions
        worst = max(worst, seasonal.contributions[0][1])
    assert worst < 5


def test_deviations_estimate_counts_its_seasons_and_the_graph() -> None:
    from warden_algos.interfaces.budget import InputShape
    from warden_algos.interfaces.graph import DependencyGraph, with_graph

    shape = InputShape(200_000, 2, 100_000, 10)
    few, many = Deviation(seasons=1).estimate(shape), Deviation(seasons=100).estimate(shape)
    assert many.peak_bytes > 50 * few.peak_bytes / 2 and many.operations > 50 * few.operations / 2
    keys = [f"m={i}" for i in range(2000)]
    chain = DependencyGraph.of(list(itertools.pairwise(keys)), keys)
    with with_graph(chain):
        assert Deviation().estimate(shape).operations > Deviation().estimate(shape).operations - 1
        assert (
            Deviation().estimate(shape).operations
            > Deviation(tie_margin=0).estimate(shape).operations
        )


def test_the_tie_break_over_a_long_chain_lifts_the_root() -> None:
    """A chain of 3,000 metrics, each scoring 0.05 % above its parent: each near tie goes up the
    chain, so the best-scored metric's ancestors among the best lead (one pass over the graph,
    not one search per metric)."""
    times = T0 + 60 * np.arange(40, dtype=np.int64)
    rng = np.random.default_rng(13)
    noise = rng.normal(0, 1, 40)
    related = []
    for i in range(3000):
        values = noise.copy()
        values[-1] += 10 * 1.0005**i
        related.append(TimeSeries({"m": f"{i:04d}"}, times, values))
    moi = TimeSeries({"metric": "total"}, times, rng.normal(0, 1, 40))
    keys = [s.key for s in related]
    graph = list(itertools.pairwise(keys))
    result = run_rca(Deviation(tie_margin=0.5), moi, related, 3, times[-1:], graph=graph)
    plain = run_rca(Deviation(tie_margin=0.5), moi, related, 3, times[-1:])
    assert result.contributions[0][0] != plain.contributions[0][0]
    assert int(result.contributions[0][0].split("=")[1]) < int(
        plain.contributions[0][0].split("=")[1]
    )


def test_case_files_refuse_repeated_keys_bad_graphs_and_too_many_cases(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    write_cases(path, [chain_case(14)])
    good = path.read_bytes()
    path.write_bytes(good.replace(b'"k":3', b'"k":3,"k":1', 1))
    with pytest.raises(CaseFileError, match=r"line 1: .*repeat"):
        read_cases(path)
    cycle = good.replace(
        b'{"parent":"metric=leaf","child":"metric=total"}',
        b'{"parent":"metric=leaf","child":"metric=root"}',
    )
    assert cycle != good
    path.write_bytes(good + cycle)
    with pytest.raises(CaseFileError, match=r"line 2: rca\.graph: the graph has a cycle"):
        read_cases(path)
    path.write_bytes(good * 3)
    assert len(read_cases(path)) == 3
    with pytest.raises(CaseFileError, match="more than 2 cases"):
        read_cases(path, max_cases=2)

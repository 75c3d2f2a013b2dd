"""RCA cases from Salesforce PyRCA's simulator: random causal DAGs with injected root causes.

    pip install --no-deps sfr-pyrca            # its simulation module needs numpy only
    python benchmarks/pyrca_cases.py --cases 120 --seed 0 --out cases.jsonl
    warden-algos evaluate --algorithm graph_residual --rca-cases cases.jsonl

A generator the project did not write (``pyrca.simulation.data_gen``): a DAG of 10 to 50 metrics
whose node 0 is the only sink (the metric of interest; every other node is a related metric),
each node a weighted sum of a fixed transformation (identity, square, sin or tanh, one per case)
of its parents plus its own noise (normal, exponential, uniform or Laplace); the anomaly adds a
constant to the noise of one or more root-cause nodes (PyRCA's anomaly type 0), doubled until the
sink leaves its normal band (mean +- 3 standard deviations of its normal points) at every
anomalous point. A case is the normal points followed by the anomalous ones, one a minute; the
anomaly times are the anomalous points; the graph is the DAG's edges (parent -> child).

PyRCA draws from unseeded generators (``np.random.default_rng()`` inside its functions);
:func:`seeded` replaces that constructor while a case is drawn, so a seed always gives the same
cases. Nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from warden_algos.evaluation.rca_synthetic import RcaCase
from warden_algos.interfaces import TimeSeries

START_S = 1_700_000_000
STEP_S = 60


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """numpy's global generator seeded, and every argument-less ``default_rng()`` drawn from
    one seed sequence, while the block runs (PyRCA's functions create their own generators)."""
    original = np.random.default_rng
    children = np.random.SeedSequence(seed)

    def default_rng(seed_: Any = None) -> np.random.Generator:
        if seed_ is not None:
            return original(seed_)
        return original(children.spawn(1)[0])

    saved = np.random.get_state()
    np.random.seed(seed % 2**32)
    np.random.default_rng = default_rng  # type: ignore[assignment]
    try:
        yield
    finally:
        np.random.default_rng = original
        np.random.set_state(saved)


def pyrca_case(
    seed: int,
    *,
    nodes: tuple[int, int] = (10, 50),
    edges_per_node: float = 1.5,
    normal_points: int = 1000,
    anomalous_points: int = 50,
    func_type: str | None = None,
    noise_type: str | None = None,
) -> RcaCase:
    """One case, the same for the same arguments."""
    from pyrca.simulation.data_gen import (  # pyright: ignore[reportMissingImports]
        AnomalyDataGen,
        AnomalyDataGenConfig,
        DAGGen,
        DAGGenConfig,
        DataGen,
        DataGenConfig,
    )

    with seeded(seed):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(nodes[0], nodes[1] + 1))
        dag = DAGGen(DAGGenConfig(num_node=n, num_edge=round(edges_per_node * n), rng=rng)).gen()
        normal, parent_weights, noise_weights, func, noise = DataGen(
            DataGenConfig(
                dag=dag, num_samples=normal_points, func_type=func_type, noise_type=noise_type
            )
        ).gen()
        sink = normal[:, 0]
        anomalous, fault = AnomalyDataGen(
            AnomalyDataGenConfig(
                parent_weights=parent_weights,
                noise_weights=noise_weights,
                noise_type=noise,
                func_type=func,
                baseline=float(np.mean(sink)),
                threshold=3.0 * float(np.std(sink)),
                num_samples=anomalous_points,
                anomaly_type=0,
            )
        ).gen()
    values = np.vstack([normal, anomalous])
    if not np.isfinite(values).all():  # a square of a square of ... a doubled fault overflows
        raise ValueError("PyRCA's values overflowed")
    times = START_S + STEP_S * np.arange(values.shape[0], dtype=np.int64)

    def key(node: int) -> str:
        return f"metric=m{node}"

    def series(node: int) -> TimeSeries:
        return TimeSeries(
            dimensions={"metric": f"m{node}"},
            times=times,
            values=np.ascontiguousarray(values[:, node], dtype=np.float64),
        )

    causes = tuple(key(int(node)) for node in np.flatnonzero(fault))
    graph = tuple((key(int(c)), key(int(e))) for c, e in zip(*np.nonzero(dag), strict=True))
    return RcaCase(
        metric_of_interest=series(0),
        related_metrics=[series(node) for node in range(1, n)],
        anomalies=times[normal_points:],
        root_causes=causes,
        root_dimension="metric",
        factor=float(np.max(fault)),
        total_effect=float(np.mean(np.abs(anomalous[:, 0] - np.mean(sink))) / np.std(sink)),
        graph=graph,
    )


#: Draws a case may take: PyRCA gives up (raising) when no fault it tries moves the sink out of
#: its band at every anomalous point (a saturating sin or tanh), and the case is drawn again.
ATTEMPTS = 20


def pyrca_cases(n_cases: int, seed: int, **settings: Any) -> list[RcaCase]:
    """``n_cases`` cases; case ``i`` is the first of seeds ``seed * 100_003 + i + 1_000_003 * a``
    (attempt ``a`` = 0, 1, ...) PyRCA can make."""
    cases = []
    for index in range(n_cases):
        for attempt in range(ATTEMPTS):
            try:
                with contextlib.redirect_stdout(sys.stderr):  # PyRCA prints as it gives up
                    case = pyrca_case(seed * 100_003 + index + 1_000_003 * attempt, **settings)
            except Exception:  # PyRCA raises a str (a TypeError) when it gives up; or overflow
                continue
            cases.append(case)
            break
        else:
            raise RuntimeError(f"PyRCA made no case {index} in {ATTEMPTS} attempts")
    return cases


def main(argv: list[str] | None = None) -> int:
    from warden_algos.evaluation.rca_cases import write_cases

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file to write")
    args = parser.parse_args(argv)
    cases = pyrca_cases(args.cases, args.seed)
    write_cases(args.out, cases)
    print(f"wrote {len(cases)} cases to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

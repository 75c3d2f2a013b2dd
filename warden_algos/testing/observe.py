"""Run an algorithm on every conformance case once (twice, for determinism) and keep what happened.

The named checks all judge the same observations, so a check run on its own (one pytest id per
check) does not re-run a slow algorithm eleven more times: observations are kept per algorithm
class and params for the life of the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from warden_algos.interfaces import (
    Algorithm,
    DetectAlgorithm,
    DetectResult,
    InvalidInput,
    RCAAlgorithm,
    RCAResult,
    run_detect,
    run_rca,
)

from .capture import stdout_capture
from .cases import Case, DetectCase, cases_for

Result = DetectResult | RCAResult


@dataclass(frozen=True)
class Observation:
    """One case, run twice: both results, or the refusal, or the other exception."""

    case: Case
    first: Result | None
    second: Result | None
    refusal: InvalidInput | None
    error: BaseException | None
    stdout: bytes

    @property
    def answered(self) -> bool:
        return self.first is not None


_observed: dict[tuple[type, bytes], list[Observation]] = {}


def _run(algorithm: Algorithm[Any], case: Case) -> Result:
    if isinstance(case, DetectCase):
        assert isinstance(algorithm, DetectAlgorithm)
        return run_detect(algorithm, case.timestamps, case.values, ["conformance=1"])
    assert isinstance(algorithm, RCAAlgorithm)
    graph = None if case.graph is None else list(case.graph)
    return run_rca(
        algorithm,
        case.metric_of_interest,
        case.related_metrics,
        case.k,
        case.anomalies,
        graph=graph,
    )


def observe_case(algorithm: Algorithm[Any], case: Case) -> Observation:
    first = second = None
    refusal: InvalidInput | None = None
    error: BaseException | None = None
    with stdout_capture() as stdout:
        try:
            first = _run(algorithm, case)
            second = _run(algorithm, case)
        except InvalidInput as refused:
            refusal, first, second = refused, None, None
        except (Exception, SystemExit) as raised:  # what the dispatcher turns into ALGORITHM_FAILED
            error, first, second = raised, None, None
    return Observation(case, first, second, refusal, error, stdout())


def observe(algorithm: Algorithm[Any]) -> list[Observation]:
    """Every case of the algorithm's interface, observed once per process."""
    key = (type(algorithm), orjson.dumps(algorithm.params.model_dump(mode="json")))
    if key not in _observed:
        _observed[key] = [observe_case(algorithm, case) for case in cases_for(algorithm.interface)]
    return _observed[key]

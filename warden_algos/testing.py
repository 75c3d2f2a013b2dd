"""``check_algorithm``: the algorithm contract as a test any author can run on their own class.

Like scikit-learn's ``check_estimator``: it feeds the awkward inputs production will feed
(empty, one point, constant, missing values, huge values, irregular times), and checks that the
algorithm answers with a valid result or refuses with ``InvalidInput``, is deterministic, and keeps
stdout clean. Use it in your package's tests::

    from warden_algos.testing import check_algorithm
    def test_contract():
        check_algorithm(MyDetector)

or from the shell: ``warden-algos check NAME``.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from warden_algos.interfaces import (
    Algorithm,
    DetectAlgorithm,
    DetectResult,
    InvalidInput,
    RCAAlgorithm,
    RCAResult,
    TimeSeries,
    run_detect,
    run_rca,
)
from warden_algos.interfaces.base import contract_problems

START = 1_700_000_000


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    case: str
    passed: bool
    detail: str


@contextmanager
def _stdout_capture() -> Iterator[Callable[[], bytes]]:
    """Capture what reaches stdout while the block runs: ``print`` (even when a test runner has
    replaced ``sys.stdout``) and writes to file descriptor 1 from C or child processes."""
    captured: list[bytes] = []
    with tempfile.TemporaryFile() as sink:
        saved_fd = os.dup(1)
        saved_stdout = sys.stdout
        saved_stdout.flush()
        os.dup2(sink.fileno(), 1)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        try:
            yield lambda: b"".join(captured)
        finally:
            sys.stdout.flush()
            sys.stdout = saved_stdout
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
            sink.seek(0)
            captured.append(sink.read())


def _detect_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    n = 500
    regular = START + 60 * np.arange(n, dtype=np.int64)
    wave = 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 60) + rng.normal(0, 1, n)
    spiky = wave.copy()
    spiky[[100, 300]] += 80
    missing = wave.copy()
    missing[rng.choice(n, 50, replace=False)] = np.nan
    irregular = START + np.cumsum(rng.integers(1, 600, n)).astype(np.int64)
    return {
        "typical series with two spikes": (regular, spiky),
        "empty series": (regular[:0], wave[:0]),
        "one point": (regular[:1], wave[:1]),
        "two points": (regular[:2], wave[:2]),
        "constant series": (regular, np.full(n, 7.0)),
        "10% missing values": (regular, missing),
        "all values missing": (regular, np.full(n, np.nan)),
        "huge values": (regular, wave * 1e300),
        "tiny values": (regular, wave * 1e-300),
        "irregular timestamps": (irregular, spiky),
        "negative timestamps": (regular - 2 * START, spiky),
    }


def _same_detect(a: DetectResult, b: DetectResult) -> bool:
    def eq(x: np.ndarray | None, y: np.ndarray | None) -> bool:
        if x is None or y is None:
            return x is y
        return bool(np.array_equal(x, y, equal_nan=True))

    return all(eq(getattr(a, f), getattr(b, f)) for f in DetectResult._fields)


def _check_detect(algorithm: DetectAlgorithm[Any]) -> list[CheckOutcome]:
    outcomes = []
    for case, (timestamps, values) in _detect_cases().items():
        try:
            with _stdout_capture() as stdout:
                first = run_detect(algorithm, timestamps, values, ["check=1"])
                second = run_detect(algorithm, timestamps, values, ["check=1"])
        except InvalidInput as refusal:
            outcomes.append(CheckOutcome(case, True, f"refused with InvalidInput: {refusal}"))
            continue
        except Exception as error:
            outcomes.append(CheckOutcome(case, False, f"{type(error).__name__}: {error}"))
            continue
        if stdout():
            outcomes.append(CheckOutcome(case, False, f"wrote to stdout: {stdout()[:80]!r}"))
        elif not _same_detect(first, second):
            outcomes.append(CheckOutcome(case, False, "two runs on the same input differ"))
        else:
            outcomes.append(CheckOutcome(case, True, f"{first.timestamps.size} anomalies"))
    return outcomes


def _rca_cases() -> dict[str, tuple[TimeSeries, list[TimeSeries], int, np.ndarray]]:
    rng = np.random.default_rng(1)
    n = 200
    times = START + 60 * np.arange(n, dtype=np.int64)
    bump = np.zeros(n)
    bump[120:130] = 1.0
    cause = 5 + rng.normal(0, 0.3, n) + 8 * bump
    bystander = 5 + rng.normal(0, 0.3, n)
    moi = TimeSeries({"metric": "moi"}, times, 100 + 4 * cause + rng.normal(0, 0.3, n))
    related = [
        TimeSeries({"dep": "cause"}, times, cause),
        TimeSeries({"dep": "bystander"}, times, bystander),
        TimeSeries({"dep": "gappy"}, times[::3], bystander[::3]),
    ]
    nan_moi = moi.values.copy()
    nan_moi[::7] = np.nan
    anomalies = times[[122, 126]]
    return {
        "typical incident": (moi, related, 2, anomalies),
        "k larger than the candidates": (moi, related, 10, anomalies),
        "no related metrics": (moi, [], 3, anomalies),
        "no anomalies given": (moi, related, 2, anomalies[:0]),
        "missing values": (TimeSeries(moi.dimensions, times, nan_moi), related, 2, anomalies),
        "empty metric of interest": (
            TimeSeries(moi.dimensions, times[:0], moi.values[:0]),
            related,
            2,
            anomalies[:0],
        ),
    }


def _check_rca(algorithm: RCAAlgorithm[Any]) -> list[CheckOutcome]:
    outcomes = []
    for case, (moi, related, k, anomalies) in _rca_cases().items():
        try:
            with _stdout_capture() as stdout:
                first: RCAResult = run_rca(algorithm, moi, related, k, anomalies)
                second = run_rca(algorithm, moi, related, k, anomalies)
        except InvalidInput as refusal:
            outcomes.append(CheckOutcome(case, True, f"refused with InvalidInput: {refusal}"))
            continue
        except Exception as error:
            outcomes.append(CheckOutcome(case, False, f"{type(error).__name__}: {error}"))
            continue
        if stdout():
            outcomes.append(CheckOutcome(case, False, f"wrote to stdout: {stdout()[:80]!r}"))
        elif first != second:
            outcomes.append(CheckOutcome(case, False, "two runs on the same input differ"))
        else:
            outcomes.append(CheckOutcome(case, True, f"{len(first.contributions)} contributions"))
    return outcomes


def run_checks(algorithm: type[Algorithm[Any]] | Algorithm[Any]) -> list[CheckOutcome]:
    """Every check, passed or not; ``check_algorithm`` is the asserting form."""
    algorithm_class = algorithm if isinstance(algorithm, type) else type(algorithm)
    problems = contract_problems(algorithm_class)
    if problems:
        return [CheckOutcome("class contract", False, problem) for problem in problems]
    instance = algorithm if isinstance(algorithm, Algorithm) else algorithm_class()
    outcomes = [CheckOutcome("class contract", True, "name, summary, Params and methods")]
    if isinstance(instance, DetectAlgorithm):
        outcomes += _check_detect(instance)
    elif isinstance(instance, RCAAlgorithm):
        outcomes += _check_rca(instance)
    return outcomes


def check_algorithm(algorithm: type[Algorithm[Any]] | Algorithm[Any]) -> None:
    """Raise AssertionError listing every contract check the algorithm fails."""
    failures = [o for o in run_checks(algorithm) if not o.passed]
    if failures:
        lines = "\n".join(f"  - {o.case}: {o.detail}" for o in failures)
        raise AssertionError(f"{len(failures)} contract check(s) failed:\n{lines}")

"""Running the checks: all at once (``check_algorithm``), one pytest id per check
(``parametrize_with_checks``), or as rows for a table (``run_checks``, used by ``warden-algos
check``). Modelled on scikit-learn's ``check_estimator`` and ``parametrize_with_checks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warden_algos.interfaces import Algorithm

from .checks import (
    CHECKS,
    Check,
    ConformanceFailure,
    Expectations,
    checks_for,
    class_contract_failure,
)

if TYPE_CHECKING:
    from _pytest.mark.structures import MarkDecorator

AlgorithmLike = type[Algorithm[Any]] | Algorithm[Any]


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    detail: str  # the rule when passed, else the problem
    fix: str = ""
    known_failure: str | None = None  # the declared reason, when it failed as declared


def _instance(algorithm: AlgorithmLike) -> Algorithm[Any]:
    return algorithm() if isinstance(algorithm, type) else algorithm


def _expectations(
    expected_refusals: Mapping[str, str] | None,
    known_failures: Mapping[str, str] | None,
    registered: bool,
) -> Expectations:
    return Expectations(dict(expected_refusals or {}), dict(known_failures or {}), registered)


def _run_one(check: Check, instance: Algorithm[Any], expectations: Expectations) -> CheckResult:
    known = expectations.known_failures.get(check.name)
    try:
        check(instance, expectations)
    except ConformanceFailure as failure:
        if known is not None:
            return CheckResult(check.name, True, failure.problem, failure.fix, known)
        return CheckResult(check.name, False, failure.problem, failure.fix)
    if known is not None:
        return CheckResult(
            check.name,
            False,
            f"declared as a known failure ({known}) but passes",
            "remove it from known_failures",
        )
    return CheckResult(check.name, True, check.rule)


def run_checks(
    algorithm: AlgorithmLike,
    *,
    expected_refusals: Mapping[str, str] | None = None,
    known_failures: Mapping[str, str] | None = None,
    registered: bool = True,
) -> list[CheckResult]:
    """Every check that applies, passed or not; ``check_algorithm`` is the asserting form."""
    cls = algorithm if isinstance(algorithm, type) else type(algorithm)
    broken = class_contract_failure(cls)
    if broken is not None:  # nothing else can run on a class that cannot be instantiated
        return [CheckResult(broken.check, False, broken.problem, broken.fix)]
    instance = _instance(algorithm)
    expectations = _expectations(expected_refusals, known_failures, registered)
    expectations.validate(instance)
    return [_run_one(check, instance, expectations) for check in checks_for(instance, expectations)]


def check_algorithm(
    algorithm: AlgorithmLike,
    *,
    expected_refusals: Mapping[str, str] | None = None,
    known_failures: Mapping[str, str] | None = None,
    registered: bool = True,
) -> None:
    """Raise AssertionError naming every broken rule once, each with its fix.

    ``expected_refusals`` maps a case name to why the algorithm refuses it (needed only for a
    typical case); ``known_failures`` maps a check name to why it fails for now; both are strict.
    ``registered=False`` for a class no entry point registers (defined in a test or a notebook).
    """
    results = run_checks(
        algorithm,
        expected_refusals=expected_refusals,
        known_failures=known_failures,
        registered=registered,
    )
    failed = [r for r in results if not r.passed]
    if failed:
        name = getattr(algorithm, "__name__", type(algorithm).__name__)
        lines = "\n".join(f"  - {r.check}: {r.detail}\n      fix: {r.fix}" for r in failed)
        raise AssertionError(
            f"{name} fails {len(failed)} of {len(results)} conformance checks:\n{lines}"
        )


class BoundCheck:
    """One check with the author's declarations, as ``parametrize_with_checks`` hands it over:
    call it with the algorithm."""

    def __init__(self, check: Check, expectations: Expectations) -> None:
        self.check = check
        self.expectations = expectations

    def __call__(self, algorithm: AlgorithmLike) -> None:
        broken = class_contract_failure(
            algorithm if isinstance(algorithm, type) else type(algorithm)
        )
        if broken is not None:
            raise broken
        instance = _instance(algorithm)
        self.expectations.validate(instance)
        self.check(instance, self.expectations)

    def __repr__(self) -> str:
        return self.check.name


def parametrize_with_checks(
    *algorithms: AlgorithmLike,
    expected_refusals: Mapping[str, str] | None = None,
    known_failures: Mapping[str, str] | None = None,
    registered: bool = True,
) -> MarkDecorator:
    """A ``pytest.mark.parametrize`` giving each check its own test id (``Cls-check_name``)::

        @parametrize_with_checks(MyDetector)
        def test_warden_contract(algorithm, check):
            check(algorithm)

    A check declared in ``known_failures`` is a strict ``xfail``: it must fail, with the reason.
    """
    import pytest  # only where pytest runs

    params = []
    for algorithm in algorithms:
        cls = algorithm if isinstance(algorithm, type) else type(algorithm)
        expectations = _expectations(expected_refusals, known_failures, registered)
        if class_contract_failure(cls) is not None:  # the other checks need an instance
            checks = [CHECKS[0]]
        else:
            instance = _instance(algorithm)
            expectations.validate(instance)
            checks = checks_for(instance, expectations)
        for check in checks:
            known = expectations.known_failures.get(check.name)
            marks = [pytest.mark.xfail(strict=True, reason=known)] if known is not None else []
            params.append(
                pytest.param(
                    algorithm,
                    BoundCheck(check, expectations),
                    id=f"{cls.__name__}-{check.name}",
                    marks=marks,
                )
            )
    return pytest.mark.parametrize(("algorithm", "check"), params)

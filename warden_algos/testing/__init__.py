"""The conformance kit: the algorithm contract as tests any author runs on their own class.

Like scikit-learn's ``check_estimator``: each rule is a named check (registration, import cost,
typical inputs answered, awkward inputs answered or refused with ``InvalidInput``, determinism,
clean stdout, one detection per incident, the wire formats' round trip, a serialisable params
schema), and a broken rule fails once, with its fix. Use it in your package's tests::

    from warden_algos.testing import parametrize_with_checks

    @parametrize_with_checks(MyDetector)
    def test_warden_contract(algorithm, check):
        check(algorithm)

or all at once with ``check_algorithm(MyDetector)``, or from the shell: ``warden-algos check NAME``.
Declare what you mean instead of weakening a check: ``expected_refusals={"case": "why"}``,
``known_failures={"check_name": "why"}``, ``registered=False`` for a class no entry point registers.
"""

from .cases import as_request, case_names, cases_for
from .checks import CHECKS, ConformanceFailure, Expectations
from .kit import CheckResult, check_algorithm, parametrize_with_checks, run_checks

__all__ = [
    "CHECKS",
    "CheckResult",
    "ConformanceFailure",
    "Expectations",
    "as_request",
    "case_names",
    "cases_for",
    "check_algorithm",
    "parametrize_with_checks",
    "run_checks",
]

"""The conformance kit has teeth: each mistake a new author makes fails exactly one named check,
once, with its fix; declarations are strict; ``parametrize_with_checks`` gives each check its own
pytest id. (Built-ins passing every check: test_builtin_library.py.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from warden_algos.interfaces import (
    AlgorithmParams,
    DetectAlgorithm,
    DetectorParams,
    DetectResult,
    Explanation,
    F64Array,
    I64Array,
    InvalidInput,
    explanations_wanted,
)
from warden_algos.testing import CHECKS, case_names, check_algorithm, run_checks

from .conftest import env_with_path, install_fake_distribution

TYPICAL = [
    "typical series with two spikes",
    "typical series with an incident",
    "typical series, 10% missing values",
]


def _far_above_median(values: F64Array) -> np.ndarray[Any, np.dtype[np.bool_]]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return values > float(np.median(present)) + 40


class Good(DetectAlgorithm[DetectorParams]):
    name = "good"
    summary = "Flags values far above the median, one detection per incident."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        flagged = _far_above_median(values)
        return DetectResult.from_flags(
            timestamps, flagged, np.nan_to_num(values), every_point=self.params.every_point
        )


class RefusesEverything(Good):
    name = "refuses_everything"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        raise InvalidInput("not enough data")


class PrintsInDetect(Good):
    name = "prints_in_detect"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        print("debugging", values.size)
        return super().detect(dimensions, timestamps, values)


class EveryPoint(Good):
    name = "every_point_always"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        flagged = _far_above_median(values)
        return DetectResult.from_mask(timestamps, flagged, np.nan_to_num(values))


class ReplacesExplanations(Good):
    """Attaches its own explanations instead of extending the SDK's: wrong run lengths."""

    name = "replaces_explanations"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        result = super().detect(dimensions, timestamps, values)
        if not explanations_wanted():
            return result
        return result._replace(
            explanations=tuple(Explanation(points=50) for _ in result.timestamps)
        )


class Random(Good):
    name = "random_scores"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        result = super().detect(dimensions, timestamps, values)
        noise = np.random.default_rng().random(result.scores.size)  # unseeded: a bug
        return DetectResult(result.timestamps, result.scores + noise)


class CrashesOnShortInput(Good):
    name = "crashes_on_short_input"

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        if values.size < 3:
            raise IndexError("window larger than the series")
        return super().detect(dimensions, timestamps, values)


class InfiniteParams(AlgorithmParams):
    limit: float = float("inf")


class UnsendableDefault(DetectAlgorithm[InfiniteParams]):
    name = "unsendable_default"
    summary = "Its default limit cannot be written in JSON."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        return DetectResult.from_flags(timestamps, values > self.params.limit, values)


class NoSummary(Good):
    name = "no_summary"
    summary = ""


def failed(algorithm: Any, **declared: Any) -> dict[str, str]:
    """check name -> problem + fix, for every failing check (the class is defined here, so no
    entry point registers it: registered=False unless the test says otherwise)."""
    declared.setdefault("registered", False)
    return {
        r.check: f"{r.detail} | fix: {r.fix}"
        for r in run_checks(algorithm, **declared)
        if not r.passed
    }


def test_a_correct_detector_passes_every_check() -> None:
    assert failed(Good) == {}
    check_algorithm(Good, registered=False)


def test_refusing_everything_fails_once_with_the_fix() -> None:
    failures = failed(RefusesEverything)
    assert list(failures) == ["check_typical_inputs_answered"]
    assert "refused 3 typical input(s)" in failures["check_typical_inputs_answered"]
    assert "expected_refusals" in failures["check_typical_inputs_answered"]


def test_print_in_detect_fails_once_and_says_use_logging() -> None:
    with pytest.raises(AssertionError) as caught:
        check_algorithm(PrintsInDetect, registered=False)
    message = str(caught.value)
    assert message.startswith("PrintsInDetect fails 1 of 9 conformance checks:")
    assert message.count("check_stdout_untouched") == 1
    assert message.count("use logging") == 1  # grouped: once, not once per case
    assert f"on {len(case_names('detect'))} of {len(case_names('detect'))} inputs" in message


def test_every_point_reporting_fails_unless_every_point_is_asked_for() -> None:
    failures = failed(EveryPoint)
    assert list(failures) == ["check_one_detection_per_incident"]
    assert "'typical series with an incident'" in failures["check_one_detection_per_incident"]
    assert "from_flags" in failures["check_one_detection_per_incident"]
    assert failed(EveryPoint(every_point=True)) == {}


def test_explanations_that_break_the_contract_fail_their_check_once() -> None:
    failures = failed(ReplacesExplanations)
    assert list(failures) == ["check_explanations"]
    assert "points in a span of" in failures["check_explanations"]
    assert "_replace" in failures["check_explanations"]


def test_unseeded_randomness_fails_determinism() -> None:
    failures = failed(Random)
    assert list(failures) == ["check_deterministic"]
    assert "default_rng(self.params.seed)" in failures["check_deterministic"]


def test_an_exception_is_reported_once_with_the_cases_it_hit() -> None:
    failures = failed(CrashesOnShortInput)
    assert list(failures) == ["check_no_unexpected_exceptions"]
    detail = failures["check_no_unexpected_exceptions"]
    assert "IndexError: window larger than the series (on 'empty series', 'one point', " in detail
    assert "'two points')" in detail
    assert detail.count("IndexError") == 1
    assert "InvalidInput" in detail


def test_params_that_json_cannot_carry_fail_the_schema_check() -> None:
    failures = failed(UnsendableDefault)
    assert list(failures) == ["check_params_schema"]
    assert "params.limit" in failures["check_params_schema"]


def test_a_broken_class_reports_only_the_class_contract() -> None:
    results = run_checks(NoSummary, registered=False)
    assert [(r.check, r.passed) for r in results] == [("check_class_contract", False)]
    assert "summary must be one non-empty line" in results[0].detail


def test_declared_refusals_pass_and_are_strict() -> None:
    every_typical = {case: "needs a full day of data" for case in TYPICAL}
    assert failed(RefusesEverything, expected_refusals=every_typical) == {}
    failures = failed(Good, expected_refusals={TYPICAL[0]: "pretend"})
    assert list(failures) == ["check_typical_inputs_answered"]
    assert "declared as refused but not refused" in failures["check_typical_inputs_answered"]
    with pytest.raises(ValueError, match="expected_refusals names no case"):
        run_checks(Good, expected_refusals={"typical seires": "typo"}, registered=False)


def test_known_failures_are_strict() -> None:
    known = {"check_deterministic": "unseeded on purpose, issue 12"}
    results = {r.check: r for r in run_checks(Random, known_failures=known, registered=False)}
    assert all(r.passed for r in results.values())
    assert results["check_deterministic"].known_failure == known["check_deterministic"]
    failures = failed(Good, known_failures=known)
    assert list(failures) == ["check_deterministic"]
    assert "remove it from known_failures" in failures["check_deterministic"]
    with pytest.raises(ValueError, match="known_failures names no check"):
        run_checks(Good, known_failures={"check_determinism": "typo"}, registered=False)


def test_registered_false_leaves_out_exactly_the_installation_checks() -> None:
    names = [r.check for r in run_checks(Good, registered=False)]
    assert names == [
        c.name
        for c in CHECKS
        if c.name not in ("check_registration", "check_import_cost") and not c.needs_trainable
    ]


def test_an_unregistered_class_is_told_how_to_register() -> None:
    failures = failed(Good, registered=True)
    assert "check_registration" in failures
    assert 'good = "tests.test_conformance_kit:Good"' in failures["check_registration"]
    assert "registered=False" in failures["check_registration"]


HEAVY_PLUGIN = '''\
"""A plugin that pays for pandas at import."""

import numpy as np
import pandas as pd

from warden_algos.interfaces import DetectAlgorithm, DetectorParams, DetectResult


class HeavyImport(DetectAlgorithm[DetectorParams]):
    name = "heavy_import"
    summary = "Smooths with pandas, imported at module level."

    def detect(self, dimensions, timestamps, values):
        smooth = pd.Series(values).rolling(5, min_periods=1).median().to_numpy()
        with np.errstate(invalid="ignore"):
            flagged = np.abs(values - smooth) > 1e9
        return DetectResult.from_flags(timestamps, flagged, np.nan_to_num(values))
'''


def test_a_heavy_import_at_module_top_fails_naming_the_module_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "src" / "warden_heavy_import.py"
    module.parent.mkdir()
    module.write_text(HEAVY_PLUGIN)
    site = tmp_path / "site"
    install_fake_distribution(
        site, "warden_heavy_import", {"heavy_import": "warden_heavy_import:HeavyImport"}, (module,)
    )
    monkeypatch.syspath_prepend(str(site))
    from warden_heavy_import import HeavyImport  # type: ignore[import-not-found]

    failures = failed(HeavyImport, registered=True)
    assert list(failures) == ["check_import_cost"]
    detail = failures["check_import_cost"]
    assert "importing warden_heavy_import loads pandas" in detail
    assert f"{site / 'warden_heavy_import.py'}:4 imports pandas" in detail
    assert "import pandas inside detect" in detail


def test_parametrize_with_checks_gives_each_check_its_own_id(tmp_path: Path) -> None:
    (tmp_path / "test_author.py").write_text(
        textwrap.dedent(
            """
            from warden_algos.testing import parametrize_with_checks
            from tests.test_conformance_kit import PrintsInDetect, Random

            @parametrize_with_checks(PrintsInDetect, registered=False)
            def test_printer(algorithm, check):
                check(algorithm)

            @parametrize_with_checks(
                Random, registered=False, known_failures={"check_deterministic": "issue 12"}
            )
            def test_random(algorithm, check):
                check(algorithm)
            """
        )
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-rN", "test_author.py"],
        cwd=tmp_path,
        env=env_with_path(root),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert "test_printer[PrintsInDetect-check_stdout_untouched] FAILED" in out
    assert "test_printer[PrintsInDetect-check_deterministic] PASSED" in out
    assert "test_random[Random-check_deterministic] XFAIL" in out
    assert "test_random[Random-check_stdout_untouched] PASSED" in out
    assert "1 failed, 16 passed, 1 xfailed" in out  # 9 checks each, one failing, one known

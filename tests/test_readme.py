"""The README's author guide is product: its code must run and its claims must hold."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from warden_algos.interfaces import run_detect
from warden_algos.testing import CHECKS, check_algorithm

from .conftest import ROOT


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_guide_algorithm_runs_and_passes_the_contract() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(python_blocks()[0], "README.md", "exec"), namespace)
    threshold = namespace["Threshold"]
    check_algorithm(threshold, registered=False)  # defined here, not installed
    result = run_detect(
        threshold(limit=5), [1700000000, 1700000060, 1700000120], [1.0, 9.0, np.nan]
    )
    # The README shows this response for the same request.
    assert result.timestamps.tolist() == [1700000060]
    assert result.scores.tolist() == [4.0]


def test_the_guide_lists_every_conformance_check() -> None:
    text = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `(check_\w+)` \|", text, flags=re.MULTILINE)
    assert listed == [check.name for check in CHECKS]


def readme_commands() -> list[str]:
    """The README's first two bash blocks: the set-up command and the test command."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return [block.strip() for block in blocks[:2]]


def test_ci_runs_exactly_the_readme_commands() -> None:
    """CI proves the README: each of its two commands stands in .ci/run as one line, verbatim,
    in order, and the test command is the project script that brings the system packages."""
    setup, tests = readme_commands()
    assert "\n" not in setup and "\n" not in tests
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert setup in lines and tests in lines
    assert lines.index(setup) < lines.index(tests)
    assert tests == "bash dev/test.sh"
    script = (ROOT / "dev" / "test.sh").read_text()
    assert "dev/system-deps.sh" in script and "-m pytest" in script

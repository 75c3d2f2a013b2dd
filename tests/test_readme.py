"""The README's author guide is product: its code must run and its claims must hold."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from warden_algos.interfaces import run_detect
from warden_algos.testing import check_algorithm

from .conftest import ROOT


def python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_guide_algorithm_runs_and_passes_the_contract() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(python_blocks()[0], "README.md", "exec"), namespace)
    threshold = namespace["Threshold"]
    check_algorithm(threshold)
    result = run_detect(
        threshold(limit=5), [1700000000, 1700000060, 1700000120], [1.0, 9.0, np.nan]
    )
    # The README shows this response for the same request.
    assert result.timestamps.tolist() == [1700000060]
    assert result.scores.tolist() == [4.0]


def test_the_readme_opens_with_the_commands_ci_runs() -> None:
    text = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", text, flags=re.DOTALL)[:2]
    ci = (ROOT / ".ci" / "run").read_text()
    setup, tests = commands
    assert '.venv/bin/pip install -e ".[dev]"' in setup
    assert 'pip install --quiet -e ".[dev]"' in ci
    assert tests.strip() in ci

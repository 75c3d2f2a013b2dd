"""ruff and mypy are part of the test suite, so the one test command also keeps the code clean."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_ruff_finds_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_passes() -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "dev" / "typecheck.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        env={
            **__import__("os").environ,
            "PATH": f"{sys.prefix}/bin:" + __import__("os").environ.get("PATH", ""),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr

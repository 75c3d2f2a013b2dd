"""Start-up discipline: a request imports what its algorithm and its wire format need, nothing else.

One-shot latency is the platform's latency, and most of a one-shot start is imports. These tests
read the ``-X importtime``-format trace that ``WARDEN_IMPORTTIME=1`` makes the CLI write (the same
switch works in the frozen executable, see tests/test_binary.py), so a new top-level import of
pandas, scipy, rich or the evaluation harness on the hot path fails here, not in a benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from warden_algos.importtrace import ENVIRONMENT_VARIABLE, parse

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "serialization" / "vectors"

#: Never needed to answer a detect request with a lightweight built-in.
HEAVY = (
    "pandas", "scipy", "prophet", "cmdstanpy", "holidays", "matplotlib", "plotly", "rich",
    "mlflow", "aeon", "numba", "sqlalchemy", "sklearn", "starlette", "uvicorn", "anyio",
)  # fmt: skip


def traced_imports(command: list[str], stdin: bytes) -> dict[str, tuple[int, int]]:
    env = {**os.environ, ENVIRONMENT_VARIABLE: "1"}
    done = subprocess.run(command, input=stdin, capture_output=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout  # a response (or the version) was written: the run was a real one
    return parse(done.stderr.decode())


def top_level(modules: dict[str, tuple[int, int]]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def unfrozen(*args: str) -> list[str]:
    return [sys.executable, "-m", "warden_algos", *args]


def test_the_tracer_writes_what_cpython_importtime_writes() -> None:
    """Same line format, so one parser (and the usual tools) read frozen and unfrozen traces."""
    code = "import json, decimal"
    cpython = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True
    )
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from warden_algos.importtrace import install; install(); {code}",
        ],
        capture_output=True,
        text=True,
    )
    assert cpython.stderr.splitlines()[0] == ours.stderr.splitlines()[0]
    theirs, mine = parse(cpython.stderr), parse(ours.stderr)
    assert {"json", "json.decoder", "decimal"} <= set(theirs)
    assert {"json", "json.decoder", "decimal"} <= set(mine)
    own, cumulative = mine["json"]
    assert 0 <= own <= cumulative


def test_a_json_ksigma_run_imports_no_heavy_library_and_no_thrift() -> None:
    request = (VECTORS / "ksigma_spike" / "request.json").read_bytes()
    modules = traced_imports(unfrozen("run"), request)
    loaded = top_level(modules)
    assert {"numpy", "pydantic", "orjson"} <= loaded  # the trace is real
    assert not loaded & {*HEAVY, "thrift"}, sorted(loaded & {*HEAVY, "thrift"})
    algorithms = {m for m in modules if m.startswith("warden_algos.algorithms.")}
    assert algorithms <= {
        "warden_algos.algorithms.ksigma",
        "warden_algos.algorithms.rolling",
        "warden_algos.algorithms.streaming",
        "warden_algos.algorithms.common",  # numpy helpers the streaming detectors share
    }
    harness = {m for m in modules if m.startswith("warden_algos.evaluation.")}
    assert harness <= {"warden_algos.evaluation.cli"}  # the argument parser only


@pytest.mark.parametrize("format_name", ["thrift-binary", "thrift-compact"])
def test_a_thrift_run_imports_thrift_but_no_heavy_library(format_name: str) -> None:
    request = (VECTORS / "ksigma_spike" / f"request.{format_name}").read_bytes()
    loaded = top_level(traced_imports(unfrozen("run", "--format", format_name), request))
    assert "thrift" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_version_imports_neither_numpy_nor_pydantic() -> None:
    """The platform's health check runs ``version``; it must not pay for an algorithm."""
    loaded = top_level(traced_imports(unfrozen("version"), b""))
    assert not loaded & {"numpy", "pydantic", *HEAVY}, sorted(loaded & {"numpy", "pydantic"})


def test_the_console_script_traces_its_imports_too() -> None:
    """The command the README uses everywhere (not only ``python -m warden_algos``) honours
    WARDEN_IMPORTTIME, from before the command line's own imports."""
    script = Path(sys.executable).parent / "warden-algos"
    assert script.is_file(), script
    request = (VECTORS / "ksigma_spike" / "request.json").read_bytes()
    modules = traced_imports([str(script), "run"], request)
    assert "warden_algos.cli" in modules and "warden_algos.algorithms.ksigma" in modules
    assert not top_level(modules) & set(HEAVY)


def test_evaluate_imports_mlflow_and_aeon_only_when_asked(tmp_path: Path) -> None:
    """Tracking (mlflow) and range metrics (aeon, scikit-learn) cost seconds of imports: an
    evaluation without --mlflow and --range-metrics pays for neither."""
    from .test_evaluation import _tiny_corpus

    root = _tiny_corpus(tmp_path / "corpus")
    command = unfrozen("evaluate", "--algorithm", "ksigma", "--corpus", str(root), "--no-cache")
    loaded = top_level(traced_imports(command, b""))
    assert "rich" in loaded  # the trace is real
    assert not loaded & {"mlflow", "aeon", "numba", "sqlalchemy"}, sorted(loaded)
    asked = top_level(traced_imports([*command, "--range-metrics"], b""))
    assert "aeon" in asked and "mlflow" not in asked

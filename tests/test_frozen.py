"""The registry and build stamp a frozen executable carries (the PyInstaller build bakes them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from warden_algos.frozen import BuildStamp, render_baked
from warden_algos.registry import Registry

from .conftest import cli

STAMP = BuildStamp(
    version="9.9.9",
    git_commit="0" * 40,
    build_time="2026-11-23T12:00:00+00:00",
    entries=(
        ("ksigma", "warden_algos.algorithms.ksigma:KSigma", "built-in"),
        ("correlation", "warden_algos.algorithms.correlation:Correlation", "built-in"),
    ),
)

# Pretends to be a frozen executable: sys.frozen set, the baked module importable under its name.
PRETEND_FROZEN = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_warden_algos_baked", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["_warden_algos_baked"] = module
spec.loader.exec_module(module)
sys.frozen = {frozen}
from warden_algos.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run(baked_file: Path, *args: str, frozen: bool = True) -> dict[str, object] | list[object]:
    done = subprocess.run(
        [sys.executable, "-c", PRETEND_FROZEN.format(frozen=frozen), str(baked_file), *args],
        capture_output=True,
        timeout=60,
        check=True,
    )
    parsed: dict[str, object] | list[object] = orjson.loads(done.stdout)
    return parsed


def test_rendered_stamp_is_plain_literals_that_round_trip(tmp_path: Path) -> None:
    source = render_baked(STAMP)
    namespace: dict[str, object] = {}
    exec(compile(source, "_baked.py", "exec"), namespace)
    assert namespace["STAMP"] == STAMP


def test_a_frozen_process_lists_exactly_the_baked_registry(tmp_path: Path) -> None:
    baked_file = tmp_path / "_baked.py"
    baked_file.write_text(render_baked(STAMP))
    listed = _run(baked_file, "list", "--json")
    assert isinstance(listed, list)
    assert sorted(item["name"] for item in listed) == ["correlation", "ksigma"]  # type: ignore[index]
    version = _run(baked_file, "version", "--json")
    assert isinstance(version, dict)
    assert version["frozen"] is True
    assert version["git_commit"] == "0" * 40
    assert version["build_time"] == STAMP.build_time
    assert version["algorithms"] == [
        {"name": "correlation", "interface": "rca", "source": "built-in"},
        {"name": "ksigma", "interface": "detect", "source": "built-in"},
    ]


def test_an_unfrozen_process_ignores_a_left_over_baked_module(tmp_path: Path) -> None:
    baked_file = tmp_path / "_baked.py"
    baked_file.write_text(render_baked(STAMP))
    version = _run(baked_file, "version", "--json", frozen=False)
    assert isinstance(version, dict)
    names = {item["name"] for item in version["algorithms"]}  # type: ignore[union-attr]
    assert names == set(Registry.discover().names())
    assert version["build_time"] is None


def test_version_reports_commit_and_every_algorithm_with_its_interface() -> None:
    done = cli("version", "--json")
    assert done.returncode == 0, done.stderr
    info = orjson.loads(done.stdout)
    registry = Registry.discover()
    assert [a["name"] for a in info["algorithms"]] == registry.names()
    interfaces = {a["name"]: a["interface"] for a in info["algorithms"]}
    assert interfaces["prophet"] == "detect" and interfaces["adtributor"] == "rca"
    commit = info["git_commit"]
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)

"""A new author's plugin mistakes, installed for real (a dist-info with entry_points.txt on the
path) and met where each one must be caught: the plugin's own tests, ``list``, ``run`` and a
``build`` that refuses before PyInstaller starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from warden_algos.registry import BUILTIN_ALGORITHMS

from .conftest import cli, detect_request, dumps, env_with_path, install_fake_distribution
from .plugins.environments import install_fragile_plugin
from .plugins.warden_fragile_algos import BREAK_IMPORT_ENV
from .test_scaffold import pip_install

PLUGIN = '''\
"""rolling_quantile, registered under a misspelled entry-point name."""

import numpy as np

from warden_algos.interfaces import DetectAlgorithm, DetectorParams, DetectResult


class RollingQuantile(DetectAlgorithm[DetectorParams]):
    name = "rolling_quantile"
    summary = "Flags points above the series' 99th percentile."

    def detect(self, dimensions, timestamps, values):
        present = values[~np.isnan(values)]
        limit = np.quantile(present, 0.99) if present.size else np.inf
        with np.errstate(invalid="ignore"):
            flagged = values > limit
        return DetectResult.from_flags(timestamps, flagged, np.nan_to_num(values))
'''

PLUGIN_TESTS = """\
from warden_algos.testing import parametrize_with_checks
from warden_rolling_quantile import RollingQuantile


@parametrize_with_checks(RollingQuantile)
def test_contract(algorithm, check):
    check(algorithm)
"""

#: The line of ``name = "rolling_quantile"`` in PLUGIN.
CLASS_NAME_LINE = 9


@pytest.fixture(scope="module")
def typo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The plugin installed with ``rolling_quantiles = ...`` (the class says rolling_quantile)."""
    root = tmp_path_factory.mktemp("typo")
    source = root / "src" / "warden_rolling_quantile.py"
    source.parent.mkdir()
    source.write_text(PLUGIN)
    site = root / "site"
    install_fake_distribution(
        site,
        "warden_rolling_quantile",
        {"rolling_quantiles": "warden_rolling_quantile:RollingQuantile"},
        (source,),
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_rolling_quantile.py").write_text(PLUGIN_TESTS)
    return site, env_with_path(site)


def where(site: Path) -> tuple[str, str]:
    """The two places the fix is: the class's name line, the entry point's line."""
    return (
        f"{site / 'warden_rolling_quantile.py'}:{CLASS_NAME_LINE}",
        f"{site / 'warden_rolling_quantile-1.0.dist-info' / 'entry_points.txt'}:2",
    )


def test_the_plugins_own_test_fails_registration_naming_both_lines(
    typo: tuple[Path, dict[str, str]],
) -> None:
    site, env = typo
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests"],
        cwd=site.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "[RollingQuantile-check_registration] FAILED" in done.stdout
    assert "1 failed" in done.stdout  # every other check passes
    class_line, entry_line = where(site)
    assert "registered as 'rolling_quantiles' but its class says name = 'rolling_quantile'" in (
        done.stdout
    )
    assert class_line in done.stdout and entry_line in done.stdout


def test_list_shows_the_healthy_algorithms_and_the_broken_plugin_with_its_fix(
    typo: tuple[Path, dict[str, str]],
) -> None:
    site, env = typo
    done = cli("list", "--json", env=env)
    assert done.returncode == 1
    rows = {row["name"]: row for row in orjson.loads(done.stdout)}
    assert {name for name, row in rows.items() if row["interface"]} == set(BUILTIN_ALGORITHMS)
    broken = rows["rolling_quantiles"]
    assert broken["interface"] is None
    assert all(line in broken["error"] for line in where(site))


def test_running_the_intended_name_says_the_entry_point_has_the_typo(
    typo: tuple[Path, dict[str, str]],
) -> None:
    site, env = typo
    done = cli("run", stdin=dumps(detect_request("rolling_quantile")), env=env)
    response = orjson.loads(done.stdout)
    assert response["error"]["code"] == "UNKNOWN_ALGORITHM"
    message = response["error"]["message"]
    assert "under the entry-point name 'rolling_quantiles'" in message
    assert where(site)[1] in message


def refused_build(tmp_path: Path, env: dict[str, str]) -> str:
    done = cli("build", "--dist", str(tmp_path / "dist"), "--work", str(tmp_path / "work"), env=env)
    assert done.returncode == 1
    assert done.stdout == b""
    assert not (tmp_path / "dist").exists()  # refused before PyInstaller ran
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    assert "cannot be loaded, so nothing was built" in stderr
    return stderr


def test_build_refuses_a_name_mismatch_with_the_lines_to_change(
    typo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    site, env = typo
    stderr = refused_build(tmp_path, env)
    assert "'rolling_quantiles'" in stderr
    assert all(line in stderr for line in where(site))


def test_build_refuses_a_plugin_that_does_not_import(tmp_path: Path) -> None:
    env = install_fragile_plugin(tmp_path / "site")
    stderr = refused_build(tmp_path, {**env, BREAK_IMPORT_ENV: "1"})
    assert "cannot load 'warden_fragile_algos:Fragile': ImportError" in stderr
    assert "a missing dependency must be installed" in stderr


def test_build_refuses_an_entry_point_that_is_not_an_algorithm(tmp_path: Path) -> None:
    site = tmp_path / "site"
    module = tmp_path / "warden_not_algorithm.py"
    module.write_text(
        textwrap.dedent(
            """
            class Helper:
                name = "not_algorithm"
            """
        )
    )
    install_fake_distribution(
        site, "warden_not_algorithm", {"not_algorithm": "warden_not_algorithm:Helper"}, (module,)
    )
    stderr = refused_build(tmp_path, env_with_path(site))
    assert "Helper subclasses neither DetectAlgorithm nor RCAAlgorithm" in stderr


def test_a_pip_installed_project_is_pointed_at_its_pyproject_line(tmp_path: Path) -> None:
    """pip records the source folder (direct_url.json), so the message names the line the
    author edits, not the copy pip made."""
    folder = tmp_path / "package"
    assert cli("new", "rolling_quantile", "--dir", str(folder)).returncode == 0
    pyproject = folder / "pyproject.toml"
    text = pyproject.read_text()
    assert "\nrolling_quantile = " in text
    pyproject.write_text(text.replace("\nrolling_quantile = ", "\nrolling_quantiles = "))
    line = 1 + pyproject.read_text().splitlines().index(
        next(row for row in pyproject.read_text().splitlines() if row.startswith("rolling_"))
    )
    site = tmp_path / "site"
    pip_install(folder, site)
    done = cli("list", "--json", env=env_with_path(site))
    rows = {row["name"]: row for row in orjson.loads(done.stdout)}
    assert f"{pyproject}:{line}" in rows["rolling_quantiles"]["error"]
    class_file = folder / "src" / "warden_rolling_quantile" / "algorithm.py"
    assert "warden_rolling_quantile/algorithm.py:" in rows["rolling_quantiles"]["error"]
    assert class_file.name in rows["rolling_quantiles"]["error"]

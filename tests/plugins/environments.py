"""Installed-plugin environments shared by the tests and the test-vector generator.

Each function installs distributions the way pip leaves them (a ``*.dist-info`` folder with
``entry_points.txt``) into a folder, and returns the environment variables that put that folder on
the child interpreter's path, so discovery goes through ``importlib.metadata`` as in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PLUGIN_MODULE = Path(__file__).resolve().parent / "warden_test_algos.py"
FRAGILE_MODULE = Path(__file__).resolve().parent / "warden_fragile_algos.py"
EXAMPLE_PACKAGE = Path(__file__).resolve().parents[2] / "examples" / "custom_algorithm"

TEST_PLUGINS = {
    "test_sleep": "warden_test_algos:Sleeper",
    "test_print": "warden_test_algos:Printer",
    "test_crash": "warden_test_algos:Crasher",
    "test_stubborn": "warden_test_algos:Stubborn",
    "test_catch_all": "warden_test_algos:CatchAll",
    "test_bad_rca": "warden_test_algos:BadRCA",
    "test_graph_echo": "warden_test_algos:GraphEcho",
}

FRAGILE_PLUGINS = {"test_fragile": "warden_fragile_algos:Fragile"}


def install_fake_distribution(
    site: Path,
    dist_name: str,
    entry_points: Mapping[str, str],
    modules: tuple[Path, ...] = (),
) -> None:
    """Write what pip would: the modules, and a dist-info with METADATA and entry_points.txt."""
    site.mkdir(parents=True, exist_ok=True)
    for module in modules:
        shutil.copy(module, site / module.name)
    info = site / f"{dist_name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n")
    lines = ["[warden_algos.algorithms]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def env_with_path(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(
        [*(str(p) for p in paths), *([existing] if existing else [])]
    )
    return env


def install_test_plugins(site: Path) -> dict[str, str]:
    """The misbehaving test algorithms of warden_test_algos.py, installed."""
    install_fake_distribution(site, "warden_test_algos", TEST_PLUGINS, (PLUGIN_MODULE,))
    return env_with_path(site)


def install_broken_registry(site: Path) -> dict[str, str]:
    """A plugin that claims a built-in's name: every request answers INTERNAL."""
    install_fake_distribution(site, "shadowing_plugin", {"ksigma": "os:path"})
    return env_with_path(site)


def install_fragile_plugin(site: Path) -> dict[str, str]:
    """test_fragile, its own distribution: imports at build time, fails to when the environment
    says so (see warden_fragile_algos.py), like a plugin whose dependency a freeze left out."""
    install_fake_distribution(site, "warden_fragile_algos", FRAGILE_PLUGINS, (FRAGILE_MODULE,))
    return env_with_path(site)


def install_example_plugin(site: Path) -> dict[str, str]:
    """The example third-party package (``tukey_fences``), installed by pip as a user would."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(EXAMPLE_PACKAGE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env_with_path(site)

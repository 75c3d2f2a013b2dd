"""Runs PyInstaller over ``warden_algos.spec`` with the registry baked in, then packs the result.

Every algorithm the build environment can see (built-ins and installed plugins) goes into the
executable, and the registry the frozen program uses is exactly that set (see ``frozen``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from warden_algos.extras import require
from warden_algos.frozen import BAKED_MODULE, BuildStamp, current_stamp, render_baked
from warden_algos.registry import Registry, RegistryError
from warden_algos.resources import checkout_root, pyinstaller_folder

from .manifest import Manifest, pack, write_manifest

NAME = "warden-algos"
SPEC_NAME = "warden_algos.spec"  # in build/ (a checkout) or its packaged copy


class BuildError(RuntimeError):
    """PyInstaller failed, or what it made does not run."""


class Built(NamedTuple):
    mode: str
    executable: Path  # the program to run (inside the onedir folder, or the onefile)
    artifact: Path  # what ships: the onedir tarball or the onefile
    manifest: Path
    seconds: float


def default_dirs() -> tuple[Path, Path]:
    """``dist/`` and ``pyinstaller-work/`` at the top of a checkout (git-ignored), else in the cwd;
    never inside ``build/``, which is a source folder."""
    root = checkout_root() or Path.cwd()
    return root / "dist", root / "pyinstaller-work"


def bundled_modules(stamp: BuildStamp) -> tuple[list[str], list[str]]:
    """(algorithm modules, third-party top-level packages) the executable must contain."""
    modules = sorted({target.partition(":")[0] for _, target, _ in stamp.entries})
    packages = sorted(
        {target.split(".", 1)[0] for _, target, source in stamp.entries if source != "built-in"}
    )
    return modules, packages


def registry_problems() -> list[str]:
    """Why the installed algorithms cannot all be frozen (empty when they can): a duplicate name,
    a plugin that does not import, a class that breaks the contract or disagrees with its
    entry-point name. Each message says what to change."""
    try:
        registry = Registry.discover()
    except RegistryError as error:
        return [error.message]
    return registry.problems()


def refuse_inconsistent_registry() -> None:
    """A binary must not ship a plugin that cannot answer: refuse before PyInstaller runs."""
    problems = registry_problems()
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise BuildError(
            f"{len(problems)} installed algorithm(s) cannot be loaded, so nothing was built:\n"
            f"{listed}\nFix them (or uninstall the plugin) and build again; `warden-algos list` "
            "shows the same errors"
        )


def freeze(mode: str = "onedir", dist: Path | None = None, work: Path | None = None) -> Built:
    if mode not in ("onedir", "onefile"):
        raise ValueError(f"mode must be onedir or onefile, got {mode!r}")
    default_dist, default_work = default_dirs()
    dist = (dist or default_dist).resolve()
    work = (work or default_work).resolve()
    refuse_inconsistent_registry()
    require("build")
    stamp = current_stamp()
    modules, packages = bundled_modules(stamp)
    baked_dir = work / "baked"
    baked_dir.mkdir(parents=True, exist_ok=True)
    (baked_dir / f"{BAKED_MODULE}.py").write_text(render_baked(stamp))
    env = dict(os.environ)
    env.update(
        WARDEN_BUILD_MODE=mode,
        WARDEN_BUILD_MODULES=json.dumps(modules),
        WARDEN_BUILD_PACKAGES=json.dumps(packages),
        WARDEN_BUILD_PATHEX=json.dumps([str(baked_dir)]),
    )
    target_dist = dist / mode
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--workpath",
            str(work / mode),
            "--distpath",
            str(target_dist),
            str(pyinstaller_folder() / SPEC_NAME),
        ],
        env=env,
        cwd=work,
        stdout=sys.stderr,  # PyInstaller's chatter is a log, never our stdout
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BuildError(f"PyInstaller exited with {done.returncode}")
    if mode == "onedir":
        executable = target_dist / NAME / NAME
        artifact = pack(target_dist / NAME, target_dist / f"{NAME}-{stamp.version}-onedir.tar.gz")
    else:
        executable = target_dist / NAME
        artifact = executable
    if not executable.is_file():
        raise BuildError(f"PyInstaller reported success but {executable} is missing")
    manifest = Manifest.describe(
        artifact,
        mode=mode,
        stamp=stamp,
        algorithms=_algorithms(executable),
        python=platform.python_version(),
        build_seconds=round(seconds, 1),
    )
    manifest_path = write_manifest(manifest, artifact)
    return Built(mode, executable, artifact, manifest_path, seconds)


def _algorithms(executable: Path) -> list[dict[str, object]]:
    """What the frozen program itself says it holds (so the manifest cannot drift from it)."""
    done = subprocess.run(
        [str(executable), "version", "--json"], capture_output=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise BuildError(f"the built executable does not run: {done.stderr.decode()[-2000:]}")
    info = json.loads(done.stdout)
    algorithms: list[dict[str, object]] = info["algorithms"]
    return algorithms

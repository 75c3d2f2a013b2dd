"""Runs PyInstaller over ``warden_algos.spec`` with the registry baked in, then packs the result.

Every algorithm the build environment can see (built-ins and installed plugins) goes into the
executable, and the registry the frozen program uses is exactly that set (see ``frozen``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import warden_algos
from warden_algos.frozen import BuildStamp, current_stamp, render_baked

from .manifest import Manifest, pack, write_manifest

HERE = Path(__file__).resolve().parent
SPEC = HERE / "warden_algos.spec"
NAME = "warden-algos"


class BuildError(RuntimeError):
    """PyInstaller failed, or what it made does not run."""


class Built(NamedTuple):
    mode: str
    executable: Path  # the program to run (inside the onedir folder, or the onefile)
    artifact: Path  # what ships: the onedir tarball or the onefile
    manifest: Path
    seconds: float


def default_dirs() -> tuple[Path, Path]:
    """``dist/`` and ``pyinstaller-work/`` beside ``build/`` in a checkout, else in the cwd."""
    root = HERE.parent if (HERE.parent / "pyproject.toml").is_file() else Path.cwd()
    return root / "dist", root / "pyinstaller-work"


def bundled_modules(stamp: BuildStamp) -> tuple[list[str], list[str]]:
    """(algorithm modules, third-party top-level packages) the executable must contain."""
    modules = sorted({target.partition(":")[0] for _, target, _ in stamp.entries})
    packages = sorted(
        {target.split(".", 1)[0] for _, target, source in stamp.entries if source != "built-in"}
    )
    return modules, packages


def freeze(mode: str = "onedir", dist: Path | None = None, work: Path | None = None) -> Built:
    if mode not in ("onedir", "onefile"):
        raise ValueError(f"mode must be onedir or onefile, got {mode!r}")
    default_dist, default_work = default_dirs()
    dist = (dist or default_dist).resolve()
    work = (work or default_work).resolve()
    stamp = current_stamp()
    modules, packages = bundled_modules(stamp)
    stage = _stage_checkout(work)
    package_dir = (stage / "warden_algos") if stage else Path(warden_algos.__file__).parent
    baked_file = package_dir.resolve() / "_baked.py"
    baked_file.write_text(render_baked(stamp))
    env = dict(os.environ)
    env.update(
        WARDEN_BUILD_MODE=mode,
        WARDEN_BUILD_MODULES=json.dumps(modules),
        WARDEN_BUILD_PACKAGES=json.dumps(packages),
        WARDEN_BUILD_PATHEX=json.dumps([str(stage)] if stage else []),
        WARDEN_BUILD_ENTRY=str(_entry_script(work)),
    )
    if stage is not None:  # ahead of site-packages, where an editable install's hook lives
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(stage), env.get("PYTHONPATH")]))
    target_dist = dist / mode
    started = time.perf_counter()
    try:
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
                str(SPEC),
            ],
            env=env,
            cwd=work,  # not the checkout: its warden_algos/ would shadow the staged install
            stdout=sys.stderr,  # PyInstaller's chatter is a log, never our stdout
            check=False,
        )
    finally:
        baked_file.unlink(missing_ok=True)
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


def _entry_script(work: Path) -> Path:
    """entry.py copied out of build/: next to build/__init__.py, PyInstaller would put the
    checkout itself on the analysis path (a script inside a package), shadowing the stage."""
    target = work / "entry" / "warden_algos_main.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(HERE / "entry.py", target)
    return target


def _stage_checkout(work: Path) -> Path | None:
    """A regular install of this checkout for PyInstaller to analyse, or None when the package
    is already a regular install. An editable install maps interfaces/ and serialization/ into
    the package through an import hook that PyInstaller's analysis cannot follow."""
    root = HERE.parent
    if not (root / "pyproject.toml").is_file():
        return None
    stage = work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(stage),
            str(root),
        ],
        stdout=sys.stderr,
        check=False,
    )
    # setuptools leaves its own build output in build/lib and build/bdist.* (our source folder)
    shutil.rmtree(HERE / "lib", ignore_errors=True)
    for leftover in HERE.glob("bdist.*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if done.returncode != 0:
        raise BuildError("could not stage a regular install of the checkout")
    return stage


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

"""The PyInstaller executable, built once per test run by ``warden-algos build`` (onedir): it runs,
holds exactly the unfrozen registry, answers every vector as the in-process dispatcher does,
ships with a manifest whose checksum matches, and its tarball unpacks to a runnable layout."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import orjson
import pytest

from .conftest import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("binary")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "warden_algos",
            "build",
            "--verify",
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    onedir = out / "dist" / "onedir"
    tarball = next(onedir.glob("warden-algos-*-onedir.tar.gz"))
    verify_line = out / "verify.txt"
    verify_line.write_text(
        "\n".join(line for line in done.stderr.splitlines() if "verified" in line)
    )
    return {
        "executable": onedir / "warden-algos" / "warden-algos",
        "tarball": tarball,
        "manifest": tarball.with_name(tarball.name + ".manifest.json"),
        "verify_line": verify_line,
    }


def test_build_verification_covered_every_default_vector(built: dict[str, Path]) -> None:
    line = built["verify_line"].read_text()
    assert "0 mismatches" in line
    checked = int(line.split("verified ")[1].split(" ")[0])
    assert checked >= 100


def test_frozen_registry_equals_the_unfrozen_one(built: dict[str, Path]) -> None:
    frozen = subprocess.run(
        [str(built["executable"]), "version", "--json"], capture_output=True, check=True
    )
    unfrozen = cli("version", "--json")
    frozen_info, unfrozen_info = orjson.loads(frozen.stdout), orjson.loads(unfrozen.stdout)
    assert frozen_info["frozen"] is True
    assert frozen_info["algorithms"] == unfrozen_info["algorithms"]
    assert frozen_info["build_time"] is not None
    assert frozen_info["git_commit"] == unfrozen_info["git_commit"]


def test_manifest_describes_the_artifact(built: dict[str, Path]) -> None:
    manifest = orjson.loads(built["manifest"].read_bytes())
    artifact = built["tarball"].read_bytes()
    assert manifest["sha256"] == hashlib.sha256(artifact).hexdigest()
    assert manifest["size"] == len(artifact)
    assert manifest["mode"] == "onedir"
    names = {a["name"] for a in manifest["algorithms"]}
    assert {"ksigma", "prophet", "adtributor", "ensemble"} <= names


def test_tarball_unpacks_to_a_runnable_layout(built: dict[str, Path], tmp_path: Path) -> None:
    with tarfile.open(built["tarball"]) as archive:
        archive.extractall(tmp_path, filter="tar")
    executable = tmp_path / "warden-algos" / "warden-algos"
    request = (ROOT / "examples" / "requests" / "ksigma.json").read_bytes()
    done = subprocess.run([str(executable), "run"], input=request, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["status"] == "ok"


def test_prophet_runs_frozen_with_a_clean_stdout(built: dict[str, Path]) -> None:
    request = (
        ROOT / "serialization" / "vectors" / "prophet_defaults" / "request.json"
    ).read_bytes()
    done = subprocess.run(
        [str(built["executable"]), "run"], input=request, capture_output=True, timeout=120
    )
    response = orjson.loads(done.stdout)  # the whole of stdout is one JSON document
    assert response["status"] == "ok", response
    assert len(response["detect"]["expected"]) == 600

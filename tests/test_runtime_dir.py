"""The onefile runtime folder claim and sweep, with real processes holding (or dropping) claims.

The frozen onefile executable runs the same code (tests/test_onefile.py); here the folders are
plain temporary folders, so every case, including the ones a build cannot stage on demand (a
claim surviving ``exec``, a foreign PyInstaller program's folder), runs in a second.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from warden_algos.runtime_dir import MARKER, sweep

CLAIM_THEN = """
import os, sys, time
EXECED = "print('execed', flush=True); import time; time.sleep(60)"
from warden_algos.runtime_dir import claim
claim(sys.argv[1])
print("claimed", flush=True)
{then}
"""


def start_claimer(folder: Path, then: str) -> subprocess.Popen[str]:
    """A process that claims ``folder`` and then runs ``then``; returns once the claim is held."""
    folder.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", CLAIM_THEN.format(then=then), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "claimed"
    return process


def test_sweep_removes_only_our_abandoned_folders(tmp_path: Path) -> None:
    live = start_claimer(tmp_path / "_MEIlive", "time.sleep(60)")
    dead = start_claimer(tmp_path / "_MEIdead", "pass")
    dead.wait(timeout=30)
    (tmp_path / "_MEIforeign").mkdir()  # another PyInstaller program's folder: no marker
    (tmp_path / "_MEIforeign" / "libpython3.so").write_bytes(b"")
    (tmp_path / "_MEIown").mkdir()
    (tmp_path / "_MEIown" / MARKER).write_bytes(b"")  # ours, unlocked, but the caller's own
    (tmp_path / "unrelated").mkdir()
    try:
        removed = sweep(str(tmp_path), keep=str(tmp_path / "_MEIown"))
        assert removed == [str(tmp_path / "_MEIdead")]
        remaining = sorted(p.name for p in tmp_path.iterdir())
        assert remaining == ["_MEIforeign", "_MEIlive", "_MEIown", "unrelated"]
        assert (tmp_path / "_MEIlive" / MARKER).is_file()
    finally:
        live.kill()
        live.wait()
    assert sweep(str(tmp_path), keep=str(tmp_path / "_MEIown")) == [str(tmp_path / "_MEIlive")]


def test_a_claim_survives_exec(tmp_path: Path) -> None:
    """A hard timeout replaces the process with a fresh copy of itself: the claim must hold."""
    replaced = start_claimer(
        tmp_path / "_MEIexec",
        "os.execv(sys.executable, [sys.executable, '-c', EXECED])",
    )
    assert replaced.stdout is not None
    try:
        assert replaced.stdout.readline().strip() == "execed"  # now a different program
        assert replaced.poll() is None
        assert sweep(str(tmp_path), keep="") == []
        assert (tmp_path / "_MEIexec").is_dir()
    finally:
        replaced.kill()
        replaced.wait()
    assert sweep(str(tmp_path), keep="") == [str(tmp_path / "_MEIexec")]


def test_sweep_of_a_missing_parent_is_a_no_op(tmp_path: Path) -> None:
    assert sweep(str(tmp_path / "gone"), keep="") == []

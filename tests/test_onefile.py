"""The onefile executable where it is fragile: its temporary unpacked copy.

Built once per run (with the misbehaving test plugins, so a hard timeout's re-exec can be forced),
then run against: a read-only ``/tmp`` and a ``noexec`` one (each in a private mount namespace made
with ``unshare``, so the machine's own ``/tmp`` is never touched), ``TMPDIR`` as the configuration
knob, clean-up after normal, error, timeout and killed runs, and two concurrent invocations.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from warden_algos.runtime_dir import MARKER

from .conftest import ServeProcess, build_executable, detect_request, dumps

ROOT = Path(__file__).resolve().parents[1]
KSIGMA = (ROOT / "examples" / "requests" / "ksigma.json").read_bytes()


@pytest.fixture(scope="session")
def onefile(tmp_path_factory: pytest.TempPathFactory, plugin_env: dict[str, str]) -> Path:
    out = tmp_path_factory.mktemp("onefile")
    done = build_executable(out, plugin_env, "--onefile")
    assert done.returncode == 0, done.stderr[-4000:]
    return out / "dist" / "onefile" / "warden-algos"


@pytest.fixture
def runtime_root(tmp_path: Path) -> Iterator[Path]:
    """A TMPDIR of the test's own, so leftovers are countable."""
    root = tmp_path / "runtime"
    root.mkdir()
    yield root


def env_with_tmpdir(root: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(root)}


def unpacked(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name.startswith("_MEI"))


def run(binary: Path, request: bytes, root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(binary), "run", *args],
        input=request,
        capture_output=True,
        env=env_with_tmpdir(root),
        timeout=120,
        check=False,
    )


def test_a_run_answers_and_leaves_nothing_behind(onefile: Path, runtime_root: Path) -> None:
    done = run(onefile, KSIGMA, runtime_root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert orjson.loads(done.stdout)["status"] == "ok"
    assert unpacked(runtime_root) == []


def test_error_and_timeout_runs_leave_nothing_behind(onefile: Path, runtime_root: Path) -> None:
    garbage = run(onefile, b"{not json", runtime_root)
    assert orjson.loads(garbage.stdout)["error"]["code"] == "INVALID_INPUT"
    slow = dumps(detect_request("test_sleep", params={"seconds": 30}))
    timed_out = run(onefile, slow, runtime_root, "--timeout-s", "0.3")
    assert orjson.loads(timed_out.stdout)["error"]["code"] == "TIMEOUT"
    assert unpacked(runtime_root) == []


def test_a_hard_timeout_restart_keeps_serving_from_the_same_copy(
    onefile: Path, runtime_root: Path
) -> None:
    """The restart ``exec``s the executable from inside its unpacked copy: it must reuse that
    copy (not unpack a second one), keep its claim on it, and the copy must go at the end."""
    server = ServeProcess(
        "--timeout-s",
        "0.3",
        "--hard-grace-s",
        "0.5",
        env=env_with_tmpdir(runtime_root),
        command=[str(onefile)],
    )
    try:
        assert server.ask(detect_request(request_id="before"))["status"] == "ok"
        stubborn = server.ask(detect_request("test_stubborn", params={"seconds": 30}))
        assert stubborn["error"]["code"] == "TIMEOUT"
        after = server.ask(detect_request(request_id="after"))
        assert after["status"] == "ok" and after["request_id"] == "after"
        assert len(unpacked(runtime_root)) == 1
        assert "replacing this process" in server.stderr_text()
    finally:
        assert server.close() == 0
    assert unpacked(runtime_root) == []


def test_two_concurrent_invocations_do_not_interfere(onefile: Path, runtime_root: Path) -> None:
    env = env_with_tmpdir(runtime_root)
    first = ServeProcess(env=env, command=[str(onefile)])
    second = ServeProcess(env=env, command=[str(onefile)])
    try:
        for server, seed in ((first, 1), (second, 2), (first, 3), (second, 4)):
            request = detect_request(request_id=f"seed-{seed}", seed=seed)
            answer = server.ask(request)
            assert answer["request_id"] == f"seed-{seed}"
            assert answer["status"] == "ok"
        copies = unpacked(runtime_root)
        assert len(copies) == 2 and all((c / MARKER).is_file() for c in copies)
        # a third start (which sweeps) while both are running leaves both copies alone
        assert orjson.loads(run(onefile, KSIGMA, runtime_root).stdout)["status"] == "ok"
        assert unpacked(runtime_root) == copies
        assert first.ask(detect_request(request_id="still"))["request_id"] == "still"
    finally:
        assert first.close() == 0 and second.close() == 0
    assert unpacked(runtime_root) == []


def wait_until_unclaimed(folder: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    fd = os.open(folder / MARKER, os.O_RDONLY)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            except OSError:
                assert time.monotonic() < deadline, f"{folder} still claimed"
                time.sleep(0.05)
    finally:
        os.close(fd)


def test_a_killed_run_leaves_a_copy_that_the_next_start_removes(
    onefile: Path, runtime_root: Path
) -> None:
    """SIGKILL to the bootloader (what a host's deadline does) skips its clean-up."""
    server = ServeProcess(env=env_with_tmpdir(runtime_root), command=[str(onefile)])
    assert server.ask(detect_request())["status"] == "ok"
    (copy,) = unpacked(runtime_root)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    server.close()  # the orphaned program sees the end of its input and exits
    wait_until_unclaimed(copy)
    assert copy.is_dir()  # left behind: nobody was left to remove it
    done = run(onefile, KSIGMA, runtime_root)
    assert orjson.loads(done.stdout)["status"] == "ok"
    assert f"removed abandoned runtime folder {copy}" in done.stderr.decode()
    assert unpacked(runtime_root) == []


def in_private_mounts(script: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``script`` with its own view of the mounts (root only: CI runs as root)."""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script],
        input=KSIGMA,
        capture_output=True,
        timeout=180,
        check=False,
    )


#: Where the executable is copied inside the private namespace: it must live outside the /tmp
#: that the test hides, and the tmpfs mounted here is private, so the host's /mnt is untouched.
STAGE = "/mnt"


def test_a_read_only_tmp_falls_back_to_var_tmp(onefile: Path) -> None:
    stage = STAGE
    done = in_private_mounts(
        f"""
        mount -t tmpfs tmpfs {stage}
        cp {shlex.quote(str(onefile))} {stage}/warden-algos
        mount -t tmpfs -o ro tmpfs /tmp
        mount -t tmpfs tmpfs /var/tmp
        env -u TMPDIR {stage}/warden-algos run
        echo "left in /var/tmp: $(ls -A /var/tmp | wc -l)" >&2
        """
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert orjson.loads(done.stdout)["status"] == "ok"
    assert "left in /var/tmp: 0" in done.stderr.decode()


def test_a_noexec_tmp_needs_tmpdir_and_works_with_it(onefile: Path) -> None:
    """With /tmp mounted noexec the unpacked libraries cannot be mapped: the loader says so on
    stderr and stdout stays empty (the host sees no response, not a wrong one). TMPDIR pointing
    to a writable, exec-allowed folder is the documented fix."""
    stage = STAGE
    common = f"""
        mount -t tmpfs tmpfs {stage}
        cp {shlex.quote(str(onefile))} {stage}/warden-algos
        mkdir {stage}/runtime
        mount -t tmpfs -o noexec tmpfs /tmp
    """
    broken = in_private_mounts(common + f"env -u TMPDIR {stage}/warden-algos run")
    assert broken.returncode != 0
    assert broken.stdout == b""
    assert b"failed to map segment" in broken.stderr
    fixed = in_private_mounts(
        common
        + f"""
        TMPDIR={stage}/runtime {stage}/warden-algos run
        echo "left: $(ls -A {stage}/runtime | wc -l)" >&2
        """
    )
    assert fixed.returncode == 0, fixed.stderr.decode()[-2000:]
    assert orjson.loads(fixed.stdout)["status"] == "ok"
    assert "left: 0" in fixed.stderr.decode()

"""The JVM host's puller (examples/jvm_host, ``PullCli``) against a real S3 server, through
presigned URLs, on the same ``DEST`` layout as warden_algos/delivery/pull.py.

Each case makes a plan the way an operator or the platform would (``warden-algos release presign
--properties``), runs the Java puller in its own JVM, and checks the node's folder from Python:
what ``current`` runs, what ``previous`` keeps, that nothing half-done is left behind. The Python
puller takes turns with the Java one on one ``DEST`` to show the two share one layout and one
lock.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import pytest

from warden_algos.delivery.pull import installed, pull, rollback_local
from warden_algos.executable.manifest import Manifest, sha256_of

from . import test_jvm_host
from .conftest import BUCKET
from .s3_server import FaultyProxy
from .test_deploy import ALGORITHMS, corrupt_blob, make_store, published, release_cli, run_program
from .test_jvm_host import java

# moto_server and the key prefix are conftest's fixtures.
_harness: list[str] = []


@pytest.fixture(scope="session")
def classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The harness, built as test_jvm_host's fixture builds it, once for every module of pullers
    that imports this fixture (pytest makes each module's import a fixture of its own: without
    the memo, each would spend ~5 s building again)."""
    if not _harness:
        built = subprocess.run(
            [
                "bash",
                str(test_jvm_host.JVM_HOST / "build.sh"),
                str(tmp_path_factory.mktemp("pull")),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert built.returncode == 0, built.stderr
        _harness.append(built.stdout.strip().splitlines()[-1])
    return _harness[0]


PULL_CLI = "warden.algos.host.PullCli"


class Pulled(NamedTuple):
    status: str
    release_id: str
    downloaded_bytes: int
    attempts: int


def make_plan(endpoint: str, prefix: str, folder: Path, channel: str = "prod") -> Path:
    """What the platform hands a node: the channel's pointer and presigned URLs, as properties."""
    done = release_cli(endpoint, prefix, "presign", "--channel", channel, "--properties")
    assert done.returncode == 0, done.stderr.decode()
    plan = folder / f"plan-{uuid.uuid4().hex[:8]}.properties"
    plan.write_bytes(done.stdout)
    return plan


def java_pull_process(classpath: str, plan: Path, dest: Path, *options: str) -> list[str]:
    return [
        "java",
        "-cp",
        classpath,
        PULL_CLI,
        "pull",
        "--plan",
        str(plan),
        "--dest",
        str(dest),
        "--backoff-ms",
        "20",
        *options,
    ]


def run_java_pull(
    classpath: str, plan: Path, dest: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        java_pull_process(classpath, plan, dest, *options),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def java_pull(classpath: str, plan: Path, dest: Path, *options: str) -> Pulled:
    done = run_java_pull(classpath, plan, dest, *options)
    assert done.returncode == 0, f"{done.stdout}\n--- stderr ---\n{done.stderr[-4000:]}"
    return parse(done.stdout)


def parse(stdout: str) -> Pulled:
    status, release_id, downloaded, attempts = stdout.strip().splitlines()[-1].split()
    return Pulled(status, release_id, int(downloaded), int(attempts))


def java_pull_failing(classpath: str, plan: Path, dest: Path, *options: str) -> str:
    """A pull that fails as designed: exit status 1, a message, no stack trace."""
    done = run_java_pull(classpath, plan, dest, *options)
    assert done.returncode == 1, f"{done.stdout}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert done.stdout == "" and "pull: error: " in done.stderr
    assert "\tat " not in done.stderr  # a handled failure, not a crash
    return done.stderr


def leftovers(dest: Path) -> list[str]:
    """Anything a pull in progress makes and a finished (or failed) one must not leave."""
    found = [p.name for p in (dest / ".partial").glob("*")] if (dest / ".partial").exists() else []
    found += [p.name for p in (dest / "releases").glob(".*")]
    found += [p.name for p in dest.glob(".current.*")] + [p.name for p in dest.glob(".previous.*")]
    return found


def test_java_pulls_through_a_presigned_url_then_does_nothing(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    one = published(store, tmp_path / "art", "one")
    store.promote("prod", one, why="first")
    dest = tmp_path / "node"
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    release = store.release(one)
    assert release is not None

    first = java_pull(classpath, plan, dest)
    assert first == Pulled("installed", one, release.manifest.size, 1)
    assert run_program(dest)["tag"] == "one"
    assert os.readlink(dest / "current") == os.path.join("releases", one)
    assert not (dest / "previous").exists()
    record = store.client.get_object(Bucket=BUCKET, Key=store.release_key(one))["Body"].read()
    assert (dest / "current" / "release.json").read_bytes() == record  # verbatim
    assert installed(dest) == release  # and the Python puller reads it as the same release
    assert leftovers(dest) == []

    again = java_pull(classpath, plan, dest)
    assert again == Pulled("current", one, 0, 0)
    assert run_program(dest)["tag"] == "one"


def test_java_follows_a_promote_keeps_two_and_rolls_back_locally(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    one, two, three = (published(store, tmp_path / "art", tag) for tag in ("one", "two", "three"))
    dest = tmp_path / "node"
    store.promote("prod", one, why="first")
    java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    store.promote("prod", two, why="second")

    second = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert (second.status, second.release_id) == ("installed", two)
    assert run_program(dest)["tag"] == "two"
    assert os.readlink(dest / "previous") == os.path.join("releases", one)

    rolled = java(classpath, PULL_CLI, "rollback", "--dest", str(dest), timeout=60)
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.split() == ["rolled-back", one]
    assert run_program(dest)["tag"] == "one"
    assert os.readlink(dest / "previous") == os.path.join("releases", two)

    store.promote("prod", three, why="third")
    java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert run_program(dest)["tag"] == "three"
    # current and previous only: the release rolled away from was pruned
    assert sorted(p.name for p in (dest / "releases").iterdir()) == sorted([one, three])


def test_python_and_java_pullers_take_turns_on_one_node(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    one = published(store, tmp_path / "art", "one")
    two = published(store, tmp_path / "art", "two")
    dest = tmp_path / "node"
    store.promote("prod", one, why="first")
    assert pull(store, "prod", dest).status == "installed"
    python_record = (dest / "current" / "release.json").read_bytes()

    by_java = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert by_java == Pulled("current", one, 0, 0)  # read Python's release.json, same sha256
    assert (dest / "current" / "release.json").read_bytes() == python_record

    store.promote("prod", two, why="second")
    by_java = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert (by_java.status, by_java.release_id) == ("installed", two)
    by_python = pull(store, "prod", dest)
    assert by_python[:2] == ("current", two) and by_python.downloaded_bytes == 0
    # Python rolls back to what Python installed, through the links Java wrote
    assert rollback_local(dest).release_id == one and run_program(dest)["tag"] == "one"
    # and Java, asked for two again, switches back without downloading it again
    back = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert back == Pulled("installed", two, 0, 0)
    assert run_program(dest)["tag"] == "two"


def test_java_installs_a_onefile_artifact(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    """A onefile artifact is the program itself: copied to DEST/current/warden-algos, made
    executable; the Python puller finds it there too."""
    program = tmp_path / "warden-algos-solo-onefile"
    answer = json.dumps({"tag": "solo", "algorithms": ALGORITHMS})
    program.write_text(f"#!/bin/sh\nif [ \"$1\" = version ]; then echo '{answer}'; fi\n")
    manifest = Manifest(
        name=program.name,
        version="0.1.0",
        mode="onefile",
        git_commit=None,
        build_time="2026-11-23T00:00:00+00:00",
        python="3.11.7",
        sha256=sha256_of(program),
        size=program.stat().st_size,
        build_seconds=1.0,
        algorithms=ALGORITHMS,
    )
    store = make_store(s3_endpoint, prefix)
    release, _ = store.publish(program, manifest, release_id="0.1.0+solo")
    store.promote("prod", release.release_id, why="onefile")
    dest = tmp_path / "node"

    result = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert result == Pulled("installed", "0.1.0+solo", manifest.size, 1)
    executable = dest / "current" / "warden-algos"
    assert executable.is_file() and stat.S_IMODE(executable.stat().st_mode) == 0o755
    done = subprocess.run([str(executable), "version", "--json"], capture_output=True, check=True)
    assert json.loads(done.stdout)["tag"] == "solo"
    by_python = pull(store, "prod", dest)
    assert (by_python.status, by_python.executable) == ("current", executable)


def test_a_corrupted_object_never_replaces_the_java_install(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    good = published(store, tmp_path / "art", "good")
    bad = published(store, tmp_path / "art", "bad")
    dest = tmp_path / "node"
    store.promote("prod", good, why="first")
    java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    corrupt_blob(store, bad)
    store.promote("prod", bad, why="second")

    stderr = java_pull_failing(
        classpath, make_plan(s3_endpoint, prefix, tmp_path), dest, "--retries", "1"
    )
    assert "after 2 attempts: sha256" in stderr and "installed release was kept" in stderr
    assert "retrying" in stderr
    current = installed(dest)
    assert current is not None and current.release_id == good
    assert run_program(dest)["tag"] == "good"
    assert leftovers(dest) == []
    assert not (dest / "releases" / bad).exists()


def test_java_resumes_an_interrupted_download_with_a_range(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    release_id = published(store, tmp_path / "art", "big", payload_bytes=3_000_000)
    store.promote("prod", release_id, why="big one")
    release = store.release(release_id)
    assert release is not None
    proxy = FaultyProxy(s3_endpoint, cut_after=1_000_000, cut_connections=1)
    try:
        # presigned for the proxy's host:port, which is what the JVM connects to
        plan = make_plan(proxy.endpoint, prefix, tmp_path)
        done = run_java_pull(classpath, plan, tmp_path / "node")
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    result = parse(done.stdout)
    assert proxy.cut == 1
    assert result.status == "installed" and result.attempts == 2
    assert "download attempt 1 failed" in done.stderr
    # resumed, not restarted: the bytes fetched add up to one artifact exactly
    assert result.downloaded_bytes == release.manifest.size
    assert run_program(tmp_path / "node")["tag"] == "big"
    assert leftovers(tmp_path / "node") == []


def test_a_stalled_download_is_given_up_and_the_next_pull_resumes_it(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    """A connection that stops delivering must not hold the node's lock forever: the idle timeout
    cancels it, and what arrived stays in .partial for the next pull to resume from. Intact: the
    proxy sends the first attempt's next burst during the second attempt, so a cancelled exchange
    that went on writing would corrupt the part, and the resume below would fail its sha256."""
    store = make_store(s3_endpoint, prefix)
    old = published(store, tmp_path / "art", "old")
    new = published(store, tmp_path / "art", "new", payload_bytes=200_000)
    dest = tmp_path / "node"
    store.promote("prod", old, why="first")
    java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    store.promote("prod", new, why="second")
    # 16 KiB bursts, then silence for ~2 s each: longer than the 1 s idle timeout
    proxy = FaultyProxy(s3_endpoint, bytes_per_s=8_000)
    try:
        started = time.monotonic()
        stderr = java_pull_failing(
            classpath,
            make_plan(proxy.endpoint, prefix, tmp_path),
            dest,
            "--idle-timeout-s",
            "1",
            "--retries",
            "2",  # three attempts: ~3 s, over the first attempt's next burst (at ~2 s)
        )
        elapsed = time.monotonic() - started
    finally:
        proxy.close()
    assert "the connection stalled" in stderr and "installed release was kept" in stderr
    assert elapsed < 15
    assert run_program(dest)["tag"] == "old"
    (part,) = (dest / ".partial").glob("*.part")
    resumed_from = part.stat().st_size
    release = store.release(new)
    assert release is not None and 0 < resumed_from < release.manifest.size

    result = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert result == Pulled("installed", new, release.manifest.size - resumed_from, 1)
    assert run_program(dest)["tag"] == "new"


LOCK_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX)  # what warden_algos/delivery/pull.py takes
print("locked", flush=True)
sys.stdin.readline()  # until the test closes stdin
"""


def test_java_waits_for_the_python_lock_on_dest(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    release_id = published(store, tmp_path / "art", "locked")
    store.promote("prod", release_id, why="first")
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    dest = tmp_path / "node"
    dest.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(dest / ".lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    waiting: subprocess.Popen[str] | None = None
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        stderr = java_pull_failing(classpath, plan, dest, "--lock-timeout-s", "0.5")
        assert time.monotonic() - started >= 0.5
        assert f"another pull holds {dest / '.lock'} for over 0.5 s" in stderr
        assert not (dest / "current").exists()

        waiting = subprocess.Popen(
            java_pull_process(classpath, plan, dest),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)  # long enough for the JVM to start and reach the lock
        assert waiting.poll() is None and not (dest / "current").exists()

        assert holder.stdin is not None
        holder.stdin.close()  # the Python "pull" ends; its lock goes with it
        holder.wait(timeout=10)
        out, err = waiting.communicate(timeout=120)
        assert waiting.returncode == 0, err
        assert parse(out).status == "installed"
        assert run_program(dest)["tag"] == "locked"
    finally:
        for process in (holder, waiting):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_a_plan_naming_a_path_is_refused(classpath: str, tmp_path: Path) -> None:
    """The release id becomes a folder name under DEST/releases: a plan cannot point outside."""
    plan = tmp_path / "plan.properties"
    plan.write_text(
        "release_id=../../etc\nmode=onedir\nsize=1\nsha256=" + "0" * 64 + "\n"
        "url=http\\://127.0.0.1\\:9/a\nrelease_url=http\\://127.0.0.1\\:9/b\n"
    )
    stderr = java_pull_failing(classpath, plan, tmp_path / "node")
    assert "release_id ../../etc is not valid" in stderr
    assert not (tmp_path / "node" / "releases").exists()

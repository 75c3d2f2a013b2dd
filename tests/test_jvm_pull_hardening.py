"""The Java puller (examples/jvm_host, ``PullCli``) against what a hostile bucket writer can
publish, and against symlinks planted in DEST: the cases tests/test_pull_hardening.py tries on
the Python puller, with its helpers, and the same outcome. Each refusal is one line, writes
nothing outside DEST, leaves nothing unpacked and keeps the installed release.

The good release is installed by the Python puller (no JVM needed for that); each case then runs
one JVM, the Java pull that must refuse.
"""

from __future__ import annotations

import io
import json
import stat
import tarfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from warden_algos.delivery.pull import installed, pull
from warden_algos.delivery.store import ReleaseStore
from warden_algos.executable.manifest import Manifest, sha256_of

from . import test_jvm_pull
from .conftest import ALGORITHMS, BUCKET, fake_manifest
from .test_deploy import make_store, published, run_program
from .test_jvm_host import java
from .test_jvm_pull import Pulled, java_pull, java_pull_failing, make_plan, run_java_pull
from .test_pull_hardening import (
    good_install,
    hostile_members,
    member,
    program,
    ship,
    shutil_rmtree_partial,
    tarball_of,
)

# The built harness, shared with test_jvm_pull (built once for all puller modules).
classpath = test_jvm_pull.classpath


@pytest.fixture
def store(s3_endpoint: str, prefix: str) -> ReleaseStore:
    return make_store(s3_endpoint, prefix)


def refused_by_java(
    classpath: str, store: ReleaseStore, endpoint: str, prefix: str, tmp: Path, dest: Path
) -> str:
    """Java pulls what prod points to and must refuse it in one line."""
    stderr = java_pull_failing(classpath, make_plan(endpoint, prefix, tmp), dest)
    errors = [line for line in stderr.splitlines() if "pull: error: " in line]
    assert len(errors) == 1, stderr
    return errors[0]


def assert_kept(dest: Path, good: str) -> None:
    have = installed(dest)
    assert have is not None and have.release_id == good
    assert run_program(dest)["tag"] == "good"
    assert sorted(p.name for p in (dest / "releases").iterdir()) == [good]  # no staging left


# 1. tar unpack -------------------------------------------------------------------------------


def gnu_tarball(folder: Path, tag: str, extra: list[Any]) -> tuple[Path, Manifest]:
    """Like ``tarball_of``, in GNU format: a long name is a ``L`` header entry, not PAX."""
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / f"warden-algos-{tag}-onedir.tar.gz"
    with tarfile.open(tarball, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, body in [member("warden-algos/warden-algos", data=program(tag)), *extra]:
            tar.addfile(info, body)
    return tarball, fake_manifest(tarball, git_commit=None)


def many_members_tarball(folder: Path, count: int) -> tuple[Path, Manifest]:
    """The program, then ``count`` empty folders: headers written directly (tarfile takes ~7 s
    for 200,000), gzip'd with level 1."""
    folder.mkdir(parents=True, exist_ok=True)
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info, body = member("warden-algos/warden-algos", data=program("many"))
        tar.addfile(info, body)
    prefix = head.getvalue()[: -tarfile.RECORDSIZE]  # without the end-of-archive blocks
    while prefix.endswith(b"\0" * tarfile.BLOCKSIZE):
        prefix = prefix[: -tarfile.BLOCKSIZE]
    template = tarfile.TarInfo("warden-algos/d/000000")
    template.type = tarfile.DIRTYPE
    block = bytearray(template.tobuf(format=tarfile.USTAR_FORMAT))
    at = len("warden-algos/d/")
    block[148:156] = b" " * 8
    block[at : at + 6] = b"\0" * 6
    base = sum(block)
    headers = []
    for index in range(count):
        digits = b"%06d" % index
        block[at : at + 6] = digits
        block[148:156] = b"%06o\0 " % (base + sum(digits))
        headers.append(bytes(block))
    raw = prefix + b"".join(headers) + b"\0" * (2 * tarfile.BLOCKSIZE)
    gzip = zlib.compressobj(1, zlib.DEFLATED, 31)
    tarball = folder / "warden-algos-many-onedir.tar.gz"
    tarball.write_bytes(gzip.compress(raw) + gzip.flush())
    return tarball, fake_manifest(tarball, git_commit=None)


def java_cases(outside: Path) -> dict[str, Any]:
    """Python's hostile members, and a few only a tar reader of its own has to get right."""
    long_name = "a" * 120
    cases: dict[str, Any] = {name: extra for name, extra in hostile_members(outside).items()}
    cases["pax-long-absolute-name"] = [member(f"/{long_name}/escaped", data=b"out")]
    cases["gnu-long-absolute-name"] = ("gnu", [member(f"/{long_name}/escaped", data=b"out")])
    cases["twice"] = [member("warden-algos/warden-algos", data=b"#!/bin/sh\necho replaced\n")]
    cases["empty-symlink"] = [member("warden-algos/empty", tarfile.SYMTYPE, link="")]
    cases["too-many-members"] = "many"
    return cases


JAVA_CASES = sorted(java_cases(Path("/x")))
WHY = {
    "hardlink-out": "is a hard link",
    "hardlink-in": "is a hard link",
    "device": "is a device, fifo or other special file",
    "fifo": "is a device, fifo or other special file",
    "absolute-symlink": "is a symlink leading out of its folder",
    "dotdot-symlink": "is a symlink leading out of its folder",
    "empty-symlink": "is a symlink leading out of its folder ('')",
    "dotdot-name": "has a '..' component",
    "absolute-name": "has an absolute or invalid name",
    "pax-long-absolute-name": "has an absolute or invalid name",
    "gnu-long-absolute-name": "has an absolute or invalid name",
    "below-a-symlink": "lies below a symlink",
    "twice": "appears twice",
    "too-many-members": "over 200,000 members",
}


@pytest.mark.parametrize("case", JAVA_CASES)
def test_java_refuses_a_hostile_archive_whole_and_keeps_the_install(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path, case: str
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "outside" / "victim"
    outside.parent.mkdir()
    outside.write_bytes(b"original")
    extra = java_cases(outside)[case]
    if extra == "many":
        artifact, manifest = many_members_tarball(tmp_path / "bad", 200_001)
    elif isinstance(extra, tuple):
        artifact, manifest = gnu_tarball(tmp_path / "bad", case, extra[1])
    else:
        artifact, manifest = tarball_of(tmp_path / "bad", case, extra)
    ship(store, artifact, manifest, f"0.1.0+{case}")

    line = refused_by_java(classpath, store, s3_endpoint, prefix, tmp_path, dest)
    assert f"0.1.0+{case}: refused the artifact: " in line and "nothing was unpacked" in line
    assert WHY[case] in line, line
    if case != "too-many-members":
        assert "member '" in line
    assert outside.read_bytes() == b"original"
    assert sorted(p.name for p in outside.parent.iterdir()) == ["victim"]
    assert not (tmp_path / "escaped").exists() and not Path("/escaped").exists()
    assert not Path("/" + "a" * 120).exists()
    assert_kept(dest, good)


def test_java_unpacks_relative_symlinks_and_applies_the_data_filter_modes(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    """PyInstaller's ``_internal/libx.so -> numpy.libs/libx.so`` links install; modes are the
    "data" filter's: no setuid/setgid/sticky, no group/other write, owner read-write, the
    executable bits only where the owner's is set. The Python puller installs the same modes."""

    def with_mode(name: str, mode: int, data: bytes = b"data") -> Any:
        info, body = member(name, data=data)
        info.mode = mode
        return info, body

    extra = [
        member("warden-algos/_internal/numpy.libs/libx.so", data=b"ELF"),
        member("warden-algos/_internal/libx.so", tarfile.SYMTYPE, link="numpy.libs/libx.so"),
        with_mode("warden-algos/setuid", 0o6777),
        with_mode("warden-algos/group-exec-only", 0o071),
        with_mode("warden-algos/read-only", 0o444),
        with_mode("warden-algos/private", 0o640),
    ]
    artifact, manifest = tarball_of(tmp_path / "art", "modes", extra)
    ship(store, artifact, manifest, "0.1.0+modes")
    dest = tmp_path / "node"
    result = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert result.status == "installed"
    folder = dest / "current" / "warden-algos"
    link = folder / "_internal" / "libx.so"
    assert link.is_symlink() and link.read_bytes() == b"ELF"
    assert link.resolve().is_relative_to((dest / "releases").resolve())
    modes = {
        name: stat.S_IMODE((folder / name).stat().st_mode)
        for name in ("setuid", "group-exec-only", "read-only", "private", "warden-algos")
    }
    assert modes == {
        "setuid": 0o755,
        "group-exec-only": 0o640,
        "read-only": 0o644,
        "private": 0o640,
        "warden-algos": 0o755,
    }
    python_dest = tmp_path / "python-node"
    pull(store, "prod", python_dest)
    python_folder = python_dest / "current" / "warden-algos"
    assert {name: stat.S_IMODE((python_folder / name).stat().st_mode) for name in modes} == modes


def test_java_unpack_and_signature_units(classpath: str) -> None:
    """What needs no bucket, in one JVM (examples/jvm_host/test/.../PullUnitTests.java): the
    8 GiB bound from headers, the "data" filter's modes, DSSE's PAE bytes, signed times."""
    done = java(classpath, "warden.algos.host.PullUnitTests", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 failed" in done.stdout and "pull units: 15 checks" in done.stdout, done.stdout


# 2. the download -----------------------------------------------------------------------------


def test_a_body_longer_than_the_manifest_size_is_cut_off_not_appended(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    """The stored object is the release's bytes plus 64 KiB more: the part file never grows
    past the manifest's size, so the verified bytes install. (Appending the whole body, as before,
    made every attempt fail on its size.)"""
    script = tmp_path / "warden-algos-long-onefile"
    answer = json.dumps({"tag": "long", "algorithms": ALGORITHMS})
    script.write_text(f"#!/bin/sh\nif [ \"$1\" = version ]; then echo '{answer}'; fi\nexit 0\n")
    manifest = Manifest(
        name=script.name,
        version="0.1.0",
        mode="onefile",
        git_commit=None,
        build_time="2026-11-23T00:00:00+00:00",
        python="3.11.7",
        sha256=sha256_of(script),
        size=script.stat().st_size,
        build_seconds=1.0,
        algorithms=ALGORITHMS,
    )
    release, _ = store.publish(script, manifest, release_id="0.1.0+long")
    store.promote("prod", release.release_id, why="longer body")
    store.client.put_object(
        Bucket=BUCKET, Key=release.artifact_key, Body=script.read_bytes() + b"#" * 65_536
    )
    dest = tmp_path / "node"
    done = run_java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    assert done.returncode == 0, done.stderr
    assert "cut off there" in done.stderr  # the first attempt stopped at the manifest's size
    status, release_id, downloaded, attempts = done.stdout.split()
    assert (status, release_id, int(downloaded)) == ("installed", "0.1.0+long", manifest.size)
    assert int(attempts) == 2
    assert (dest / "current" / "warden-algos").read_bytes() == script.read_bytes()


# 3. paths inside DEST --------------------------------------------------------------------


def test_a_symlinked_partial_folder_is_refused_not_emptied(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "victim").write_bytes(b"original")
    shutil_rmtree_partial(dest)
    (dest / ".partial").symlink_to(outside)
    store.promote("prod", published(store, tmp_path / "art", "next"), why="second")
    line = refused_by_java(classpath, store, s3_endpoint, prefix, tmp_path, dest)
    assert f"{dest / '.partial'} is a symlink the pull did not create: not touching it" in line
    assert (outside / "victim").read_bytes() == b"original"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert_kept(dest, good)


def test_a_symlinked_partial_download_is_refused_not_appended_to(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"original")
    following = published(store, tmp_path / "art", "next")
    release = store.release(following)
    assert release is not None
    (dest / ".partial").mkdir(exist_ok=True)
    part = dest / ".partial" / f"{release.sha256}.part"
    part.symlink_to(outside)
    store.promote("prod", following, why="second")
    line = refused_by_java(classpath, store, s3_endpoint, prefix, tmp_path, dest)
    assert f"{part} is not a regular file the pull created" in line
    assert outside.read_bytes() == b"original" and part.is_symlink()
    assert_kept(dest, good)


def test_a_symlinked_releases_folder_is_refused_not_pruned(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    dest = tmp_path / "node"
    dest.mkdir()
    outside = tmp_path / "precious"
    (outside / "somebodys-folder").mkdir(parents=True)
    (outside / "somebodys-folder" / "data").write_bytes(b"original")
    (dest / "releases").symlink_to(outside)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="first")
    line = refused_by_java(classpath, store, s3_endpoint, prefix, tmp_path, dest)
    assert f"{dest / 'releases'} is a symlink the pull did not create" in line
    assert (outside / "somebodys-folder" / "data").read_bytes() == b"original"
    assert sorted(p.name for p in outside.iterdir()) == ["somebodys-folder"]
    assert not (dest / "current").exists()


def test_a_symlinked_lock_is_refused_and_never_created_elsewhere(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    dest, good = good_install(store, tmp_path)
    elsewhere = tmp_path / "elsewhere" / "created-through-the-lock"
    elsewhere.parent.mkdir()
    (dest / ".lock").unlink()
    (dest / ".lock").symlink_to(elsewhere)  # dangling: following it would create the file
    store.promote("prod", published(store, tmp_path / "art", "next"), why="second")
    line = refused_by_java(classpath, store, s3_endpoint, prefix, tmp_path, dest)
    assert f"cannot open the lock {dest / '.lock'}" in line and "a symlink there is refused" in line
    assert not elsewhere.exists() and list(elsewhere.parent.iterdir()) == []
    assert_kept(dest, good)


def test_a_current_link_leading_outside_releases_is_refused(
    classpath: str, store: ReleaseStore, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "planted"
    outside.mkdir()
    (dest / "previous").symlink_to(outside)
    store.promote("prod", published(store, tmp_path / "art", "next"), why="second")
    line = refused_by_java(classpath, store, s3_endpoint, prefix, tmp_path, dest)
    assert f"{dest / 'previous'} points outside releases/" in line
    assert outside.is_dir() and list(outside.iterdir()) == []
    assert_kept(dest, good)
    # and once the operator removes it, the same plan installs
    (dest / "previous").unlink()
    after = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest)
    following = store.release("0.1.0+next")
    assert following is not None
    assert after == Pulled("installed", "0.1.0+next", following.manifest.size, 1)

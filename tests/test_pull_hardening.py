"""Issue 15 hardening of the release pull path, tried as a hostile bucket writer would, against a
real S3 server (moto_server): hostile tarballs, crafted manifests and records, planted symlinks in
DEST, injected properties lines, malformed records. Each case must end in a one-line refusal that
touches nothing outside DEST and keeps the installed release.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from warden_algos.delivery.cluster import _unpacked
from warden_algos.delivery.pull import PullError, installed, pull
from warden_algos.delivery.store import ReleaseError, ReleaseStore
from warden_algos.executable.manifest import MAX_ARTIFACT_BYTES, Manifest

from .conftest import BUCKET, fake_manifest
from .s3_server import CREDENTIALS
from .test_deploy import ALGORITHMS, fake_artifact, make_store, published, release_cli


@pytest.fixture
def store(s3_endpoint: str, prefix: str) -> ReleaseStore:
    return make_store(s3_endpoint, prefix)


def program(tag: str) -> bytes:
    return (
        "#!/bin/sh\n"
        f"# {tag}\n"
        'if [ "$1" = version ]; then echo \''
        + json.dumps({"tag": tag, "algorithms": ALGORITHMS})
        + "'; fi\n"
    ).encode()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"x") -> Any:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, io.BytesIO(data)
    return info, None


def tarball_of(
    folder: Path, tag: str, extra: list[Any], *, first: bool = False
) -> tuple[Path, Manifest]:
    """A working onedir tarball (the program answers ``version --json``) plus ``extra`` members,
    after the program (or before it with ``first``); its manifest is correct, so only the
    unpack can refuse it."""
    folder.mkdir(parents=True, exist_ok=True)
    tarball = folder / f"warden-algos-{tag}-onedir.tar.gz"
    normal = [member("warden-algos/warden-algos", data=program(tag))]
    with tarfile.open(tarball, "w:gz") as tar:
        for info, body in (extra + normal) if first else (normal + extra):
            tar.addfile(info, body)
    manifest = fake_manifest(tarball, git_commit=None)
    return tarball, manifest


def ship(store: ReleaseStore, artifact: Path, manifest: Manifest, release_id: str) -> None:
    store.publish(artifact, manifest, release_id=release_id)
    store.promote("prod", release_id, why="test")


def good_install(store: ReleaseStore, tmp_path: Path) -> tuple[Path, str]:
    good = published(store, tmp_path / "art", "good")
    store.promote("prod", good, why="first")
    dest = tmp_path / "node"
    assert pull(store, "prod", dest).status == "installed"
    return dest, good


def assert_one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and text, text
    return text


# 1. tar unpack -------------------------------------------------------------------------------


def hostile_members(outside: Path) -> dict[str, list[Any]]:
    return {
        "hardlink-out": [
            member("warden-algos/evil", tarfile.LNKTYPE, link=str(outside)),
            member("warden-algos/evil", data=b"overwritten"),
        ],
        "hardlink-in": [member("warden-algos/twin", tarfile.LNKTYPE, "warden-algos/warden-algos")],
        "device": [member("warden-algos/null", tarfile.CHRTYPE)],
        "fifo": [member("warden-algos/pipe", tarfile.FIFOTYPE)],
        "absolute-symlink": [member("warden-algos/etc", tarfile.SYMTYPE, link=str(outside))],
        "dotdot-symlink": [member("warden-algos/up", tarfile.SYMTYPE, link="../../../..")],
        "dotdot-name": [member("warden-algos/../../../../escaped", data=b"out")],
        "absolute-name": [member(str(outside.parent / "absolute"), data=b"out")],
        "below-a-symlink": [
            member("warden-algos/lib", tarfile.SYMTYPE, link="_internal"),
            member("warden-algos/lib/planted", data=b"through the link"),
        ],
    }


@pytest.mark.parametrize("case", sorted(hostile_members(Path("/x"))))
def test_a_hostile_archive_is_refused_whole_and_the_install_kept(
    store: ReleaseStore, tmp_path: Path, case: str
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "outside" / "victim"
    outside.parent.mkdir()
    outside.write_bytes(b"original")
    artifact, manifest = tarball_of(tmp_path / "bad", case, hostile_members(outside)[case])
    ship(store, artifact, manifest, f"0.1.0+{case}")
    with pytest.raises(PullError) as refused:
        pull(store, "prod", dest)
    text = assert_one_line(refused.value)
    assert "refused the artifact: member" in text
    assert outside.read_bytes() == b"original"
    assert sorted(p.name for p in outside.parent.iterdir()) == ["victim"]
    assert not (tmp_path / "escaped").exists() and not Path("/escaped").exists()
    have = installed(dest)
    assert have is not None and have.release_id == good
    assert sorted(p.name for p in (dest / "releases").iterdir()) == [good]  # no staging left


def test_a_real_onedirs_relative_symlinks_still_install(
    store: ReleaseStore, tmp_path: Path
) -> None:
    """PyInstaller puts ``_internal/libx.so -> numpy.libs/libx.so`` links in a onedir: allowed."""
    extra = [
        member("warden-algos/_internal/numpy.libs/libx.so", data=b"ELF"),
        member("warden-algos/_internal/libx.so", tarfile.SYMTYPE, link="numpy.libs/libx.so"),
    ]
    artifact, manifest = tarball_of(tmp_path / "art", "links", extra)
    ship(store, artifact, manifest, "0.1.0+links")
    dest = tmp_path / "node"
    assert pull(store, "prod", dest).status == "installed"
    link = dest / "current" / "warden-algos" / "_internal" / "libx.so"
    assert link.is_symlink() and link.read_bytes() == b"ELF"
    assert link.resolve().is_relative_to((dest / "releases").resolve())


def test_test_deploy_unpacks_with_the_same_refusals(tmp_path: Path) -> None:
    outside = tmp_path / "victim"
    outside.write_bytes(b"original")
    for case in ("hardlink-out", "absolute-symlink", "device"):
        artifact, _ = tarball_of(tmp_path / case, case, hostile_members(outside)[case])
        with pytest.raises(ReleaseError) as refused:
            _unpacked(artifact, tmp_path / f"unpacked-{case}")
        assert "refused the artifact" in assert_one_line(refused.value)
        assert outside.read_bytes() == b"original"
    good, _ = fake_artifact(tmp_path / "good", "good")
    assert _unpacked(good, tmp_path / "unpacked-good").is_file()


# 2. manifest and record fields -----------------------------------------------------------


def valid_manifest(**change: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "warden-algos-0.1.0-onedir.tar.gz",
        "version": "0.1.0",
        "mode": "onedir",
        "git_commit": None,
        "build_time": "2026-11-23T00:00:00+00:00",
        "python": "3.11.7",
        "sha256": "ab" * 32,
        "size": 4096,
        "build_seconds": 1.0,
        "algorithms": ALGORITHMS,
    }
    return {**fields, **change}


@pytest.mark.parametrize(
    "change",
    [
        {"sha256": "../../../../x/doomed"},
        {"sha256": "AB" * 32},
        {"sha256": "ab" * 31 + "a"},
        {"sha256": "ab" * 32 + "\n"},
        {"name": "a/b.tar.gz"},
        {"name": ".."},
        {"name": ""},
        {"name": "a\x00b"},
        {"name": "a\nsha256=00"},
        {"size": -1},
        {"size": MAX_ARTIFACT_BYTES + 1},
        {"size": "4096"},
    ],
    ids=repr,
)
def test_manifest_fields_are_validated(change: dict[str, Any]) -> None:
    Manifest.model_validate(valid_manifest())  # the baseline is fine
    with pytest.raises(ValidationError):
        Manifest.model_validate(valid_manifest(**change))


def put_json(store: ReleaseStore, key: str, document: Any) -> None:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    store.client.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_a_crafted_sha256_never_names_a_file_outside_dest(
    store: ReleaseStore, tmp_path: Path
) -> None:
    """The review's attack: ``sha256 = "../../../../x/doomed"`` deleted and replaced a file."""
    dest, good = good_install(store, tmp_path)
    doomed = tmp_path / "x" / "doomed.part"
    doomed.parent.mkdir()
    doomed.write_bytes(b"keep me")
    crafted = os.path.relpath(doomed.parent / "doomed", dest / ".partial")
    record = orjson.loads(
        store.client.get_object(Bucket=BUCKET, Key=store.release_key(good))["Body"].read()
    )
    record["release_id"] = "0.1.0+crafted"
    record["manifest"] = {**record["manifest"], "sha256": crafted, "size": 10}
    put_json(store, store.release_key("0.1.0+crafted"), record)
    pointer = orjson.loads(
        store.client.get_object(Bucket=BUCKET, Key=store.channel_key("prod"))["Body"].read()
    )
    put_json(
        store,
        store.channel_key("prod"),
        {**pointer, "release_id": "0.1.0+crafted", "sha256": crafted, "size": 10},
    )
    with pytest.raises(ReleaseError) as refused:
        pull(store, "prod", dest)
    assert "sha256" in assert_one_line(refused.value)
    assert doomed.read_bytes() == b"keep me"
    assert sorted(p.name for p in doomed.parent.iterdir()) == ["doomed.part"]
    have = installed(dest)
    assert have is not None and have.release_id == good


# 3. paths inside DEST --------------------------------------------------------------------


def test_a_symlinked_partial_folder_is_refused_not_emptied(
    store: ReleaseStore, tmp_path: Path
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "victim").write_bytes(b"original")
    shutil_rmtree_partial(dest)
    (dest / ".partial").symlink_to(outside)
    store.promote("prod", published(store, tmp_path / "art", "next"), why="second")
    with pytest.raises(PullError) as refused:
        pull(store, "prod", dest)
    assert ".partial" in assert_one_line(refused.value)
    assert (outside / "victim").read_bytes() == b"original"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    have = installed(dest)
    assert have is not None and have.release_id == good


def shutil_rmtree_partial(dest: Path) -> None:
    partial = dest / ".partial"
    if partial.is_dir() and not partial.is_symlink():
        for entry in partial.iterdir():
            entry.unlink()
        partial.rmdir()


def test_a_symlinked_partial_download_is_refused_not_appended_to(
    store: ReleaseStore, tmp_path: Path
) -> None:
    dest, good = good_install(store, tmp_path)
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"original")
    following = published(store, tmp_path / "art", "next")
    release = store.release(following)
    assert release is not None
    (dest / ".partial").mkdir(exist_ok=True)
    (dest / ".partial" / f"{release.sha256}.part").symlink_to(outside)
    store.promote("prod", following, why="second")
    with pytest.raises(PullError) as refused:
        pull(store, "prod", dest)
    assert_one_line(refused.value)
    assert outside.read_bytes() == b"original"
    have = installed(dest)
    assert have is not None and have.release_id == good


def test_a_symlinked_releases_folder_is_refused_not_pruned(
    store: ReleaseStore, tmp_path: Path
) -> None:
    dest = tmp_path / "node"
    dest.mkdir()
    outside = tmp_path / "precious"
    (outside / "somebodys-folder").mkdir(parents=True)
    (outside / "somebodys-folder" / "data").write_bytes(b"original")
    (dest / "releases").symlink_to(outside)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="first")
    with pytest.raises(PullError) as refused:
        pull(store, "prod", dest)
    assert "releases" in assert_one_line(refused.value)
    assert (outside / "somebodys-folder" / "data").read_bytes() == b"original"
    assert sorted(p.name for p in outside.iterdir()) == ["somebodys-folder"]


# 4. presign --properties -----------------------------------------------------------------


def load_properties(text: str) -> dict[str, str]:
    """``java.util.Properties.load`` rules: logical lines joined by an odd trailing backslash,
    comments, the first unescaped ``=``, ``:`` or whitespace ends the key, escapes decoded."""
    natural = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    logical: list[str] = []
    joining = False
    for line in natural:
        stripped = line.lstrip(" \t\f")
        if not joining and (not stripped or stripped[0] in "#!"):
            continue
        ends_escaped = (len(stripped) - len(stripped.rstrip("\\"))) % 2 == 1
        piece = stripped[:-1] if ends_escaped else stripped
        if joining:
            logical[-1] += piece
        else:
            logical.append(piece)
        joining = ends_escaped
    result: dict[str, str] = {}
    for line in logical:
        index, key_end = 0, len(line)
        while index < len(line):
            if line[index] == "\\":
                index += 2
                continue
            if line[index] in "=: \t\f":
                key_end = index
                break
            index += 1
        rest = line[key_end:].lstrip(" \t\f")
        if rest[:1] in ("=", ":"):
            rest = rest[1:].lstrip(" \t\f")
        result[unescape(line[:key_end])] = unescape(rest)
    return result


def unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 == len(text):
            out.append(char)
            index += 1
            continue
        code = text[index + 1]
        if code == "u":
            out.append(chr(int(text[index + 2 : index + 6], 16)))
            index += 6
            continue
        out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(code, code))
        index += 2
    joined = "".join(out)
    return joined.encode("utf-16", "surrogatepass").decode("utf-16")  # pairs -> one character


def test_presign_properties_cannot_be_injected(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    artifact, manifest = fake_artifact(tmp_path / "art", "props")
    version = "0.1.0\nsha256=" + "0" * 64 + "\r\nrelease_id=evil"
    who = " mallory\\\t#!=:\f\u00e9\U0001f600\x00\nurl=http://evil"
    crafted = manifest.model_copy(update={"version": version})
    store.publish(artifact, crafted, release_id="0.1.0+props")
    store.promote("prod", "0.1.0+props", why="try", who=who)
    done = release_cli(s3_endpoint, prefix, "presign", "--channel", "prod", "--properties")
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode("ascii")  # Properties.store writes ASCII only
    pairs = load_properties(text)
    pointer = store.channel("prod")
    assert pointer is not None
    expected = {
        *pointer.model_dump(exclude={"statement"}),
        "name",
        "url",
        "release_url",
        "expires_s",
    }
    assert set(pairs) == expected
    assert len(text.splitlines()) == len(expected)
    assert pairs["sha256"] == manifest.sha256 and pairs["release_id"] == "0.1.0+props"
    assert pairs["version"] == version and pairs["updated_by"] == who
    assert pairs["url"].startswith("http") and pairs["expires_s"] == "900"


# 5. malformed records --------------------------------------------------------------------


def pull_cli(endpoint: str, prefix: str, dest: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "warden_algos", "pull", "--channel", "prod", "--dest", str(dest)],
        capture_output=True,
        env={
            **os.environ,
            **CREDENTIALS,
            "WARDEN_RELEASE_BUCKET": BUCKET,
            "WARDEN_RELEASE_PREFIX": prefix,
            "WARDEN_RELEASE_ENDPOINT_URL": endpoint,
        },
        timeout=120,
        check=False,
    )


def break_record(store: ReleaseStore, what: str, release_id: str) -> None:
    if what == "pointer-json":
        put_json(store, store.channel_key("prod"), b"{not json")
    elif what == "pointer-model":
        put_json(store, store.channel_key("prod"), {"channel": "prod"})
    elif what == "release-json":
        put_json(store, store.release_key(release_id), b"\x00garbage")
    elif what == "release-model":
        record = orjson.loads(
            store.client.get_object(Bucket=BUCKET, Key=store.release_key(release_id))["Body"].read()
        )
        record["manifest"]["sha256"] = "../../etc/passwd"
        put_json(store, store.release_key(release_id), record)
    elif what == "history-model":
        put_json(store, f"{store.history_prefix('prod')}99999999-broken.json", {"who": 1})


@pytest.mark.parametrize(
    ("what", "command"),
    [
        ("pointer-json", "pull"),
        ("pointer-json", "list"),
        ("pointer-model", "presign"),
        ("release-json", "list"),
        ("release-model", "pull"),
        ("release-model", "presign"),
        ("history-model", "history"),
        ("pointer-model", "promote"),
    ],
)
def test_a_malformed_record_is_a_one_line_error(
    s3_endpoint: str, prefix: str, tmp_path: Path, what: str, command: str
) -> None:
    store = make_store(s3_endpoint, prefix)
    release_id = published(store, tmp_path / "art", "one")
    store.promote("prod", release_id, why="first")
    break_record(store, what, release_id)
    if command == "pull":
        done = pull_cli(s3_endpoint, prefix, tmp_path / "node")
    else:
        args = {
            "list": ("list",),
            "presign": ("presign", "--channel", "prod"),
            "history": ("history", "--channel", "prod"),
            "promote": ("promote", "--channel", "prod", "--release", release_id, "--why", "x"),
        }[command]
        done = release_cli(s3_endpoint, prefix, *args)
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    errors = [line for line in stderr.strip().splitlines() if ": warning: " not in line]
    assert "Traceback" not in stderr and len(errors) == 1, stderr  # (an unpinned pull warns)
    assert f"s3://{BUCKET}/{prefix}/" in stderr


def test_ship_repairs_a_broken_pointer(s3_endpoint: str, prefix: str, tmp_path: Path) -> None:
    store = make_store(s3_endpoint, prefix)
    store.promote("prod", published(store, tmp_path / "old", "old"), why="first")
    put_json(store, store.channel_key("prod"), b"{not json")
    artifact, _ = fake_artifact(tmp_path / "new", "new")
    args = ("ship", "--channel", "prod", "--why", "repair", "--json", "--artifact", str(artifact))
    done = release_cli(s3_endpoint, prefix, *args)
    assert done.returncode == 0, done.stderr.decode()
    shipped = orjson.loads(done.stdout)
    pointer = store.channel("prod")
    assert pointer is not None and pointer.release_id == shipped["release"]["release_id"]
    assert shipped["move"]["from_release"] is None
    assert [move.why for move in store.history("prod")] == ["first", "repair"]

"""Releases, channels and node-side pull against a real S3 server (moto_server on loopback).

Artifacts here are small stand-ins built by the test (a onedir-shaped tarball whose program answers
``version --json``), so each case controls sizes and bytes; the real executable goes through the
same path in tests/test_deploy_binary.py.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.delivery.config import ConfigError, ReleaseConfig
from warden_algos.delivery.pull import PullError, installed, pull, rollback_local
from warden_algos.delivery.store import ReleaseError, ReleaseStore
from warden_algos.executable.manifest import Manifest

from .conftest import ALGORITHMS, BUCKET, fake_manifest
from .s3_server import CREDENTIALS, FaultyProxy


def make_store(endpoint: str, prefix: str) -> ReleaseStore:
    config = ReleaseConfig(bucket=BUCKET, prefix=prefix, endpoint_url=endpoint)
    return ReleaseStore(config.client(), BUCKET, prefix)


@pytest.fixture
def store(s3_endpoint: str, prefix: str) -> ReleaseStore:
    return make_store(s3_endpoint, prefix)


def fake_artifact(folder: Path, tag: str, payload_bytes: int = 4096) -> tuple[Path, Manifest]:
    """A onedir-shaped tarball: warden-algos/warden-algos answers ``version --json`` with the
    algorithms its manifest lists; ``tag`` makes the bytes (and sha256) differ."""
    folder.mkdir(parents=True, exist_ok=True)
    program = (
        "#!/bin/sh\n"
        f"# {tag}\n"
        'if [ "$1" = version ]; then echo \''
        + json.dumps({"tag": tag, "algorithms": ALGORITHMS})
        + "'; fi\n"
    ).encode()
    tarball = folder / f"warden-algos-{tag}-onedir.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, data, mode in (
            ("warden-algos/warden-algos", program, 0o755),
            ("warden-algos/_internal/payload.bin", os.urandom(payload_bytes), 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    manifest = fake_manifest(tarball)
    (tarball.parent / f"{tarball.name}.manifest.json").write_bytes(
        orjson.dumps(manifest.model_dump())
    )
    return tarball, manifest


def corrupt_blob(store: ReleaseStore, release_id: str) -> None:
    """Flip one byte of a release's stored artifact: same size, so only the sha256 can tell."""
    release = store.release(release_id)
    assert release is not None
    original = store.client.get_object(Bucket=BUCKET, Key=release.artifact_key)["Body"].read()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    store.client.put_object(Bucket=BUCKET, Key=release.artifact_key, Body=bytes(flipped))


def published(store: ReleaseStore, folder: Path, tag: str, **kwargs: Any) -> str:
    artifact, manifest = fake_artifact(folder, tag, **kwargs)
    release, created = store.publish(artifact, manifest, release_id=f"0.1.0+{tag}")
    assert created
    return release.release_id


# releases --------------------------------------------------------------------------------


def test_publish_is_once_and_idempotent_for_the_same_bytes(
    store: ReleaseStore, tmp_path: Path
) -> None:
    artifact, manifest = fake_artifact(tmp_path / "a", "a")
    release, created = store.publish(artifact, manifest)
    assert created and release.release_id == f"0.1.0+{manifest.git_commit[:12]}"
    again, created_again = store.publish(artifact, manifest)
    assert not created_again and again == release
    stored = store.client.get_object(Bucket=BUCKET, Key=release.artifact_key)["Body"].read()
    assert stored == artifact.read_bytes()


def test_republishing_an_id_with_different_bytes_is_refused(
    store: ReleaseStore, tmp_path: Path
) -> None:
    first, first_manifest = fake_artifact(tmp_path / "a", "a")
    other, other_manifest = fake_artifact(tmp_path / "b", "b")
    store.publish(first, first_manifest, release_id="1.0.0")
    with pytest.raises(ReleaseError, match="already exists with different bytes"):
        store.publish(other, other_manifest, release_id="1.0.0")
    release = store.release("1.0.0")
    assert release is not None and release.sha256 == first_manifest.sha256
    body = store.client.get_object(Bucket=BUCKET, Key=release.artifact_key)["Body"].read()
    assert body == first.read_bytes()  # the refused upload did not touch the release's bytes


def test_an_artifact_that_does_not_match_its_manifest_is_not_published(
    store: ReleaseStore, tmp_path: Path
) -> None:
    artifact, manifest = fake_artifact(tmp_path / "a", "a")
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ReleaseError, match="does not match its manifest"):
        store.publish(artifact, manifest, release_id="1.0.0")
    assert store.releases() == []


def test_concurrent_publishers_of_one_id_end_with_one_release(
    store: ReleaseStore, tmp_path: Path
) -> None:
    candidates = [fake_artifact(tmp_path / f"c{i}", f"c{i}") for i in range(4)]
    outcomes: list[str] = []

    def publish(artifact: Path, manifest: Manifest) -> None:
        try:
            _, created = store.publish(artifact, manifest, release_id="2.0.0")
            outcomes.append("created" if created else "same")
        except ReleaseError:
            outcomes.append("refused")

    threads = [threading.Thread(target=publish, args=candidate) for candidate in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created", "refused", "refused", "refused"]
    release = store.release("2.0.0")
    assert release is not None
    winner = next(a for a, m in candidates if m.sha256 == release.sha256)
    body = store.client.get_object(Bucket=BUCKET, Key=release.artifact_key)["Body"].read()
    assert body == winner.read_bytes()


# channels --------------------------------------------------------------------------------


def test_promote_rollback_and_history(store: ReleaseStore, tmp_path: Path) -> None:
    one = published(store, tmp_path, "one")
    two = published(store, tmp_path, "two")
    store.promote("prod", one, why="first release", who="alice")
    store.promote("prod", two, why="fixes the spike bug", who="bob")
    pointer = store.channel("prod")
    assert pointer is not None and pointer.release_id == two
    release_two = store.release(two)
    assert release_two is not None and pointer.sha256 == release_two.sha256
    back = store.rollback("prod", why="two pages at night", who="carol")
    assert (back.from_release, back.to_release, back.action) == (two, one, "rollback")
    current = store.channel("prod")
    assert current is not None and current.release_id == one
    history = store.history("prod")
    assert [(m.action, m.from_release, m.to_release, m.who) for m in history] == [
        ("promote", None, one, "alice"),
        ("promote", one, two, "bob"),
        ("rollback", two, one, "carol"),
    ]
    assert history[1].why == "fixes the spike bug" and history[0].when < history[2].when
    assert [c.channel for c in store.channels()] == ["prod"]


def test_channels_are_independent_and_named_carefully(store: ReleaseStore, tmp_path: Path) -> None:
    one = published(store, tmp_path, "one")
    store.promote("test/alice", one, why="try it")
    assert store.channel("prod") is None
    assert [m.channel for m in store.history("test/alice")] == ["test/alice"]
    for bad in ("Prod", "test/alice/extra", "../prod", ""):
        with pytest.raises(ReleaseError, match="channel name"):
            store.promote(bad, one, why="no")


def test_refusals_leave_the_channel_alone(store: ReleaseStore, tmp_path: Path) -> None:
    one = published(store, tmp_path, "one")
    with pytest.raises(ReleaseError, match="does not exist"):
        store.rollback("prod", why="nothing there")
    store.promote("prod", one, why="first")
    with pytest.raises(ReleaseError, match="no earlier release"):
        store.rollback("prod", why="nothing before")
    with pytest.raises(ReleaseError, match="no release"):
        store.promote("prod", "9.9.9", why="typo")
    with pytest.raises(ReleaseError, match="say why"):
        store.promote("prod", one, why=" ")
    assert len(store.history("prod")) == 1


def test_the_store_never_moves_a_channel_back_unless_allowed(
    store: ReleaseStore, tmp_path: Path
) -> None:
    """The rule ``release ship`` relies on holds in the store itself, without the CLI."""
    old = published(store, tmp_path, "old")
    new = published(store, tmp_path, "new")
    store.promote("prod", old, why="first", allow_older=False)
    store.promote("prod", new, why="forward", allow_older=False)
    with pytest.raises(ReleaseError) as refused:
        store.promote("prod", old, why="a re-run of an old job", allow_older=False)
    assert str(refused.value) == (
        f"prod runs {new}, published after {old}: not moving it back (use release rollback, or "
        "--allow-older)"
    )
    pointer = store.channel("prod")
    assert pointer is not None and pointer.release_id == new
    assert len(store.history("prod")) == 2
    back = store.promote("prod", old, why="on purpose", allow_older=True)
    assert (back.from_release, back.to_release) == (new, old)


def test_concurrent_moves_never_lose_one_silently(store: ReleaseStore, tmp_path: Path) -> None:
    """Each mover reads the pointer and writes it back only if unchanged (If-Match): a move
    either lands and is in the history, or is refused; the history is one unbroken chain."""
    releases = [published(store, tmp_path, f"r{i}") for i in range(6)]
    store.promote("prod", releases[0], why="start")
    landed: list[str] = []
    refused: list[str] = []

    def promote(release_id: str) -> None:
        try:
            make_store(store.client.meta.endpoint_url, store.prefix).promote(
                "prod", release_id, why="race"
            )
            landed.append(release_id)
        except ReleaseError as error:
            assert "moved while" in str(error)
            refused.append(release_id)

    threads = [threading.Thread(target=promote, args=(r,)) for r in releases[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = store.history("prod")
    assert len(history) == 1 + len(landed) and len(landed) + len(refused) == 5
    assert landed
    for before, after in itertools.pairwise(history):
        assert after.from_release == before.to_release
    pointer = store.channel("prod")
    assert pointer is not None and pointer.release_id == history[-1].to_release


# config ----------------------------------------------------------------------------------


def test_config_sources_and_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "warden-release.toml"
    file.write_text('[release]\nbucket = "from-file"\nprefix = "p1"\n')
    monkeypatch.delenv("WARDEN_RELEASE_BUCKET", raising=False)
    assert ReleaseConfig.load(file).bucket == "from-file"
    monkeypatch.setenv("WARDEN_RELEASE_BUCKET", "from-env")
    assert ReleaseConfig.load(file).bucket == "from-env"
    assert ReleaseConfig.load(file, bucket="from-flag").bucket == "from-flag"
    assert ReleaseConfig.load(file).prefix == "p1"
    file.write_text('[release]\nbucket = "b-b-b"\naws_secret_access_key = "oops"\n')
    with pytest.raises(ConfigError, match="credentials never go in a config file"):
        ReleaseConfig.load(file)
    monkeypatch.delenv("WARDEN_RELEASE_BUCKET")
    monkeypatch.chdir(tmp_path)
    file.unlink()
    with pytest.raises(ConfigError, match="no release bucket"):
        ReleaseConfig.load()


# pull ------------------------------------------------------------------------------------


def run_program(dest: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(dest / "current" / "warden-algos" / "warden-algos"), "version", "--json"],
        capture_output=True,
        check=True,
    )
    answer: dict[str, Any] = orjson.loads(done.stdout)
    return answer


def test_pull_installs_then_does_nothing_then_follows_a_promote(
    store: ReleaseStore, tmp_path: Path
) -> None:
    one = published(store, tmp_path / "art", "one")
    two = published(store, tmp_path / "art", "two")
    store.promote("prod", one, why="first")
    dest = tmp_path / "node"
    first = pull(store, "prod", dest)
    assert (first.status, first.release_id) == ("installed", one)
    assert first.downloaded_bytes > 0 and run_program(dest)["tag"] == "one"
    assert (dest / "current").is_symlink() and not (dest / "previous").exists()
    again = pull(store, "prod", dest)
    assert (again.status, again.downloaded_bytes) == ("current", 0)
    store.promote("prod", two, why="second")
    second = pull(store, "prod", dest)
    assert (second.status, second.release_id) == ("installed", two)
    assert run_program(dest)["tag"] == "two"
    assert os.readlink(dest / "previous") == os.path.join("releases", one)
    rolled = rollback_local(dest)
    assert rolled.release_id == one and run_program(dest)["tag"] == "one"
    assert sorted(p.name for p in (dest / "releases").iterdir()) == sorted([one, two])


def test_pull_keeps_two_releases(store: ReleaseStore, tmp_path: Path) -> None:
    dest = tmp_path / "node"
    ids = [published(store, tmp_path / "art", f"k{i}") for i in range(4)]
    for release_id in ids:
        store.promote("prod", release_id, why="next")
        pull(store, "prod", dest)
    assert sorted(p.name for p in (dest / "releases").iterdir()) == sorted(ids[-2:])


def test_a_corrupted_object_never_replaces_the_installed_release(
    store: ReleaseStore, tmp_path: Path
) -> None:
    good = published(store, tmp_path / "art", "good")
    bad = published(store, tmp_path / "art", "bad")
    store.promote("prod", good, why="first")
    dest = tmp_path / "node"
    pull(store, "prod", dest)
    corrupt_blob(store, bad)
    store.promote("prod", bad, why="second")
    with pytest.raises(PullError, match="sha256") as raised:
        pull(store, "prod", dest, retries=1, backoff_s=0.01)
    assert "installed release was kept" in str(raised.value)
    current = installed(dest)
    assert current is not None and current.release_id == good
    assert run_program(dest)["tag"] == "good"
    assert list((dest / ".partial").iterdir()) == []
    assert not (dest / "releases" / bad).exists()


def test_an_interrupted_download_resumes_and_still_verifies(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    release_id = published(store, tmp_path / "art", "big", payload_bytes=3_000_000)
    store.promote("prod", release_id, why="big one")
    proxy = FaultyProxy(s3_endpoint, cut_after=1_000_000, cut_connections=2)
    try:
        through_proxy = make_store(proxy.endpoint, prefix)
        messages: list[str] = []
        result = pull(through_proxy, "prod", tmp_path / "node", backoff_s=0.01, log=messages.append)
    finally:
        proxy.close()
    assert proxy.cut >= 1
    assert result.status == "installed" and result.attempts >= 2
    assert any("retrying" in message for message in messages)
    release = store.release(release_id)
    assert release is not None
    # resumed, not restarted: the bytes fetched add up to about one artifact, not two
    assert result.downloaded_bytes < 1.5 * release.manifest.size
    assert run_program(tmp_path / "node")["tag"] == "big"


def cli_pull(endpoint: str, prefix: str, dest: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warden_algos",
            "pull",
            "--channel",
            "prod",
            "--dest",
            str(dest),
            "--bucket",
            BUCKET,
            "--prefix",
            prefix,
            "--endpoint-url",
            endpoint,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **CREDENTIALS},
    )


def test_a_killed_pull_leaves_the_install_alone_and_the_next_one_resumes(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    store = make_store(s3_endpoint, prefix)
    old = published(store, tmp_path / "art", "old")
    new = published(store, tmp_path / "art", "new", payload_bytes=4_000_000)
    store.promote("prod", old, why="first")
    dest = tmp_path / "node"
    pull(store, "prod", dest)
    store.promote("prod", new, why="second")
    proxy = FaultyProxy(s3_endpoint, bytes_per_s=2_000_000)  # ~2 s for the new artifact
    try:
        process = cli_pull(proxy.endpoint, prefix, dest)
        partial = dest / ".partial"
        deadline = 30.0
        while deadline > 0 and not any(p.stat().st_size > 200_000 for p in partial.glob("*.part")):
            threading.Event().wait(0.05)
            deadline -= 0.05
        process.kill()
        process.wait()
    finally:
        proxy.close()
    assert run_program(dest)["tag"] == "old"  # killed mid-download: nothing switched
    (part,) = partial.glob("*.part")
    resumed_from = part.stat().st_size
    result = pull(store, "prod", dest)
    assert result.status == "installed" and run_program(dest)["tag"] == "new"
    release = store.release(new)
    assert release is not None
    assert result.downloaded_bytes == release.manifest.size - resumed_from


def test_two_concurrent_pulls_take_turns(s3_endpoint: str, prefix: str, tmp_path: Path) -> None:
    store = make_store(s3_endpoint, prefix)
    release_id = published(store, tmp_path / "art", "shared", payload_bytes=2_000_000)
    store.promote("prod", release_id, why="first")
    dest = tmp_path / "node"
    proxy = FaultyProxy(s3_endpoint, bytes_per_s=4_000_000)  # slow enough to overlap
    try:
        pulls = [cli_pull(proxy.endpoint, prefix, dest) for _ in range(2)]
        outputs = [p.communicate(timeout=120) for p in pulls]
    finally:
        proxy.close()
    assert [p.returncode for p in pulls] == [0, 0], [o[1].decode()[-500:] for o in outputs]
    answers = [orjson.loads(out) for out, _ in outputs]
    assert sorted(a["status"] for a in answers) == ["current", "installed"]
    assert sorted(a["downloaded_bytes"] > 0 for a in answers) == [False, True]
    assert run_program(dest)["tag"] == "shared"


# command line ----------------------------------------------------------------------------


def release_cli(endpoint: str, prefix: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "warden_algos", "release", *args],
        capture_output=True,
        env={
            **os.environ,
            **CREDENTIALS,
            "WARDEN_RELEASE_BUCKET": BUCKET,
            "WARDEN_RELEASE_PREFIX": prefix,
            "WARDEN_RELEASE_ENDPOINT_URL": endpoint,
            "WARDEN_RELEASE_ACTOR": "ci-bot",
        },
        timeout=120,
        check=False,
    )


def test_the_release_commands_end_to_end(s3_endpoint: str, prefix: str, tmp_path: Path) -> None:
    artifact, manifest = fake_artifact(tmp_path, "cli")
    done = release_cli(s3_endpoint, prefix, "publish", "--artifact", str(artifact), "--json")
    assert done.returncode == 0, done.stderr.decode()
    record = orjson.loads(done.stdout)
    assert record["created"] and record["manifest"]["sha256"] == manifest.sha256
    again = release_cli(s3_endpoint, prefix, "publish", "--artifact", str(artifact))
    assert again.returncode == 0 and b"already published" in again.stdout
    release_id = record["release_id"]
    moved = release_cli(
        s3_endpoint,
        prefix,
        "promote",
        "--channel",
        "prod",
        "--release",
        release_id,
        "--why",
        "merge of PR 7",
    )
    assert moved.returncode == 0, moved.stderr.decode()
    history = orjson.loads(
        release_cli(s3_endpoint, prefix, "history", "--channel", "prod", "--json").stdout
    )
    assert [(m["to_release"], m["who"], m["why"]) for m in history] == [
        (release_id, "ci-bot", "merge of PR 7")
    ]
    listing = orjson.loads(release_cli(s3_endpoint, prefix, "list", "--json").stdout)
    assert [c["release_id"] for c in listing["channels"]] == [release_id]
    presigned = orjson.loads(
        release_cli(s3_endpoint, prefix, "presign", "--channel", "prod", "--json").stdout
    )
    import urllib.request

    with urllib.request.urlopen(presigned["url"], timeout=30) as response:
        assert response.read() == artifact.read_bytes()
    refused = release_cli(s3_endpoint, prefix, "rollback", "--channel", "prod", "--why", "x")
    assert refused.returncode == 1 and b"no earlier release" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_ship_publishes_and_promotes_once(s3_endpoint: str, prefix: str, tmp_path: Path) -> None:
    """What CI runs on merge: re-running the job for the same commit changes nothing."""
    artifact, _ = fake_artifact(tmp_path, "ship")
    args = ("ship", "--artifact", str(artifact), "--channel", "prod", "--why", "merge", "--json")
    first = orjson.loads(release_cli(s3_endpoint, prefix, *args).stdout)
    assert first["created"] and first["move"]["to_release"] == first["release"]["release_id"]
    second = orjson.loads(release_cli(s3_endpoint, prefix, *args).stdout)
    assert not second["created"] and second["move"] is None
    assert len(make_store(s3_endpoint, prefix).history("prod")) == 1


def test_presign_as_java_properties(s3_endpoint: str, prefix: str, tmp_path: Path) -> None:
    store = make_store(s3_endpoint, prefix)
    release_id = published(store, tmp_path, "props")
    store.promote("test/alice", release_id, why="try")
    done = release_cli(s3_endpoint, prefix, "presign", "--channel", "test/alice", "--properties")
    assert done.returncode == 0, done.stderr.decode()
    pairs = dict(line.split("=", 1) for line in done.stdout.decode().splitlines())
    release = store.release(release_id)
    assert release is not None
    assert pairs["release_id"] == release_id and pairs["sha256"] == release.sha256
    assert int(pairs["size"]) == release.manifest.size and pairs["mode"] == "onedir"
    import urllib.request

    with urllib.request.urlopen(pairs["release_url"], timeout=30) as response:
        assert orjson.loads(response.read())["release_id"] == release_id


def test_ship_never_moves_a_channel_back_to_an_older_release(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    """Re-running an old merge's CI job must not roll prod back; rollback is explicit."""
    old, _ = fake_artifact(tmp_path / "old", "old")
    new, _ = fake_artifact(tmp_path / "new", "new")
    ship = ("ship", "--channel", "prod", "--why", "merge", "--json", "--artifact")
    assert release_cli(s3_endpoint, prefix, *ship, str(old)).returncode == 0
    assert release_cli(s3_endpoint, prefix, *ship, str(new)).returncode == 0
    rerun = release_cli(s3_endpoint, prefix, *ship, str(old))
    assert rerun.returncode == 1 and b"not moving it back" in rerun.stderr
    store = make_store(s3_endpoint, prefix)
    pointer = store.channel("prod")
    new_release = store.releases()[-1]
    assert pointer is not None and pointer.release_id == new_release.release_id
    forced = release_cli(s3_endpoint, prefix, *ship, str(old), "--allow-older")
    assert forced.returncode == 0 and len(store.history("prod")) == 3


def test_a_missing_object_fails_fast_instead_of_retrying(
    store: ReleaseStore, tmp_path: Path
) -> None:
    release_id = published(store, tmp_path / "art", "gone")
    store.promote("prod", release_id, why="first")
    release = store.release(release_id)
    assert release is not None
    store.client.delete_object(Bucket=BUCKET, Key=release.artifact_key)
    messages: list[str] = []
    with pytest.raises(PullError, match="after 1 attempts"):
        pull(store, "prod", tmp_path / "node", backoff_s=5, log=messages.append)
    assert messages == []  # not one retry: a 404 stays a 404
    assert installed(tmp_path / "node") is None


def test_s3_failures_are_one_line_errors(s3_endpoint: str, prefix: str, tmp_path: Path) -> None:
    env_bucket = {"WARDEN_RELEASE_BUCKET": "no-such-bucket-here"}
    done = subprocess.run(
        [sys.executable, "-m", "warden_algos", "release", "list", "--endpoint-url", s3_endpoint],
        capture_output=True,
        env={**os.environ, **CREDENTIALS, **env_bucket},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert b"NoSuchBucket" in done.stderr and b"Traceback" not in done.stderr

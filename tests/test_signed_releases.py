"""Signed releases against a real S3 server (moto_server): a node that pins release keys installs
only what they signed, refuses tampered, mis-signed, expired and replayed (older) statements
before downloading anything, and follows a key rotation. The attacker here can write anything to
the bucket but holds no release key."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.delivery.dsse import Envelope
from warden_algos.delivery.errors import ReleaseError, SignatureError
from warden_algos.delivery.pull import installed, pull
from warden_algos.delivery.signing import CHANNEL_TYPE, ChannelStatement, TrustedKeys
from warden_algos.delivery.store import ReleaseStore
from warden_algos.delivery.trust import STATE_FILE, ChannelState

from .conftest import BUCKET
from .s3_server import CREDENTIALS
from .signing_keys import new_key, signed_store, trusted_keys_file
from .test_deploy import fake_artifact, published

ROOT = Path(__file__).resolve().parents[1]


def pinned(tmp_path: Path, *signers: Any, **kwargs: Any) -> TrustedKeys:
    return TrustedKeys.load(trusted_keys_file(tmp_path / "trusted.json", *signers, **kwargs))


def raw(store: ReleaseStore, key: str) -> bytes:
    body: bytes = store.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def put(store: ReleaseStore, key: str, body: bytes) -> None:
    store.client.put_object(Bucket=BUCKET, Key=key, Body=body)


def statement_of(store: ReleaseStore, channel: str = "prod") -> ChannelStatement:
    pointer = store.channel(channel)
    assert pointer is not None and pointer.statement is not None
    return ChannelStatement.model_validate(orjson.loads(pointer.statement.payload_bytes()))


def refused(store: ReleaseStore, dest: Path, trust: TrustedKeys, *words: str) -> str:
    """The pull is refused with a message holding ``words``; the install is untouched and
    nothing was downloaded."""
    before = installed(dest)
    with pytest.raises(SignatureError) as caught:
        pull(store, "prod", dest, trust=trust)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    after = installed(dest)
    assert (before and before.release_id) == (after and after.release_id)
    partial = dest / ".partial"
    assert not partial.exists() or not any(partial.iterdir())
    return message


@pytest.fixture
def key() -> Any:
    return new_key()[1]


def test_a_signed_release_installs_and_its_sequence_is_remembered(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    one = published(store, tmp_path / "art", "one")
    store.promote("prod", one, why="first")
    assert store.release_signature(one) is not None
    trust, dest = pinned(tmp_path, key), tmp_path / "node"
    result = pull(store, "prod", dest, trust=trust)
    assert result.status == "installed" and result.release_id == one
    state = ChannelState.load(dest).channels["prod"]
    assert state.sequence == statement_of(store).sequence and state.release_id == one
    # installed verbatim: the bytes the statement's record_sha256 covers
    assert (dest / "current" / "release.json").read_bytes() == raw(store, store.release_key(one))
    assert pull(store, "prod", dest, trust=trust).status == "current"


def test_an_unsigned_channel_is_refused_by_a_pinning_node(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    unsigned = signed_store(s3_endpoint, prefix, None)
    unsigned.promote("prod", published(unsigned, tmp_path / "art", "one"), why="unsigned")
    refused(unsigned, tmp_path / "node", pinned(tmp_path, key), "unsigned", "refusing")


def test_a_tampered_release_record_is_refused_before_the_download(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    one = published(store, tmp_path / "art", "one")
    store.promote("prod", one, why="first")
    record = orjson.loads(raw(store, store.release_key(one)))
    record["published_by"] = "mallory"  # any byte: the statement covers the record's sha256
    put(store, store.release_key(one), orjson.dumps(record, option=orjson.OPT_INDENT_2))
    refused(store, tmp_path / "node", pinned(tmp_path, key), "tampered record")


def test_a_tampered_statement_does_not_verify(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="first")
    _, evil_manifest = fake_artifact(tmp_path / "evil", "evil")
    pointer = orjson.loads(raw(store, store.channel_key("prod")))
    payload = orjson.loads(base64.b64decode(pointer["statement"]["payload"]))
    payload["sha256"], payload["size"] = evil_manifest.sha256, evil_manifest.size
    pointer["statement"]["payload"] = base64.b64encode(orjson.dumps(payload)).decode()
    pointer["sha256"], pointer["size"] = evil_manifest.sha256, evil_manifest.size
    put(store, store.channel_key("prod"), orjson.dumps(pointer))
    refused(store, tmp_path / "node", pinned(tmp_path, key), "does not verify")


def test_a_statement_by_an_unpinned_key_is_refused(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    mallory = new_key()[1]
    store = signed_store(s3_endpoint, prefix, mallory)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="mallory's")
    refused(store, tmp_path / "node", pinned(tmp_path, key), "not trusted here")


def test_an_expired_statement_is_refused_until_the_channel_is_refreshed(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    stale = signed_store(s3_endpoint, prefix, key, statement_days=-1)
    stale.promote("prod", published(stale, tmp_path / "art", "one"), why="first")
    trust, dest = pinned(tmp_path, key), tmp_path / "node"
    refused(stale, dest, trust, "expired", "release refresh")
    fresh = signed_store(s3_endpoint, prefix, key)
    move = fresh.refresh("prod", why="weekly re-sign")
    assert move.action == "refresh" and move.from_release == move.to_release
    assert statement_of(fresh).sequence > 0
    assert pull(fresh, "prod", dest, trust=trust).status == "installed"


def test_a_replayed_older_pointer_is_refused_and_a_signed_rollback_is_followed(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    trust, dest = pinned(tmp_path, key), tmp_path / "node"
    one = published(store, tmp_path / "a", "one")
    store.promote("prod", one, why="first")
    old_pointer = raw(store, store.channel_key("prod"))  # valid, signed, and yesterday's
    pull(store, "prod", dest, trust=trust)
    two = published(store, tmp_path / "b", "two")
    store.promote("prod", two, why="second")
    new_pointer = raw(store, store.channel_key("prod"))
    assert pull(store, "prod", dest, trust=trust).release_id == two
    put(store, store.channel_key("prod"), old_pointer)  # the bucket writer replays it
    message = refused(store, dest, trust, "older than the one this node accepted", "rollback")
    assert one in message and two in message
    put(store, store.channel_key("prod"), new_pointer)  # the operator undoes the replay
    store.rollback("prod", why="two is broken", to_release=one)  # a new, signed move
    back = pull(store, "prod", dest, trust=trust)
    assert back.release_id == one and back.status == "installed"
    assert ChannelState.load(dest).channels["prod"].release_id == one


def test_the_signer_never_signs_a_pointer_to_a_release_it_cannot_verify(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    unsigned = signed_store(s3_endpoint, prefix, None)
    one = published(unsigned, tmp_path / "art", "one")  # e.g. uploaded by a bucket writer
    signer = signed_store(s3_endpoint, prefix, key)
    with pytest.raises(SignatureError, match="release sign --release"):
        signer.promote("prod", one, why="is it ours?")
    assert signer.channel("prod") is None
    signer.sign_release(one)  # a person checked the bytes and vouches for them
    signer.promote("prod", one, why="checked")
    assert pull(signer, "prod", tmp_path / "node", trust=pinned(tmp_path, key)).release_id == one


def test_key_rotation_two_keys_pinned_then_the_old_one_expires(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    old, new = new_key()[1], new_key()[1]
    by_old = signed_store(s3_endpoint, prefix, old)
    one = published(by_old, tmp_path / "a", "one")
    by_old.promote("prod", one, why="before the rotation")
    both = pinned(tmp_path, old, new)
    node = tmp_path / "node"
    assert pull(by_old, "prod", node, trust=both).release_id == one
    # CI switches to the new key: the running release is re-signed, other signatures kept
    by_new = signed_store(s3_endpoint, prefix, new)
    envelope = by_new.sign_release(one)
    assert len(envelope.signatures) == 2
    two = published(by_new, tmp_path / "b", "two")
    by_new.promote("prod", two, why="after the rotation")
    assert pull(by_new, "prod", node, trust=both).release_id == two
    # the window ends: the old key is no longer trusted, what the new key signed still is
    ended = TrustedKeys.load(
        trusted_keys_file(tmp_path / "ended.json", old, new, not_after={0: "2026-01-01T00:00:00Z"})
    )
    assert pull(by_new, "prod", tmp_path / "node-2", trust=ended).release_id == two
    stale = Envelope.model_validate(orjson.loads(raw(by_old, by_old.release_signature_key(one))))
    with pytest.raises(SignatureError, match="trusted until 2026-01-01"):
        ended.verify(
            stale.model_copy(update={"signatures": stale.signatures[1:]}),
            "application/vnd.warden-algos.release+json",
            "one's old signature",
        )


def test_a_node_state_that_is_a_symlink_is_refused(
    s3_endpoint: str, prefix: str, tmp_path: Path, key: Any
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="first")
    dest = tmp_path / "node"
    dest.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text("keep")
    (dest / STATE_FILE).symlink_to(outside)
    with pytest.raises(ReleaseError, match="symlink"):
        pull(store, "prod", dest, trust=pinned(tmp_path, key))
    assert outside.read_text() == "keep"


def test_a_trusted_keys_file_with_a_wrong_keyid_is_refused(tmp_path: Path, key: Any) -> None:
    path = trusted_keys_file(tmp_path / "keys.json", key)
    document = orjson.loads(path.read_bytes())
    document["keys"][0]["keyid"] = "0" * 64
    path.write_bytes(orjson.dumps(document))
    with pytest.raises(SignatureError, match="not the sha256 of its public_key"):
        TrustedKeys.load(path)


def test_a_channel_statement_is_not_a_release_signature(key: Any) -> None:
    from warden_algos.delivery.signing import RELEASE_TYPE, sign, trust_entry

    envelope = sign(key, CHANNEL_TYPE, b"{}")
    trust = TrustedKeys.model_validate({"keys": [trust_entry(key.public_key)]})
    with pytest.raises(SignatureError, match=r"not 'application/vnd\.warden-algos\.release"):
        trust.verify(envelope, RELEASE_TYPE, "a release")


# the commands, as CI and an operator run them ------------------------------------------------


def cli(endpoint: str, prefix: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warden_algos", *args],
        capture_output=True,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("WARDEN_SIGNING")},
            **CREDENTIALS,
            "WARDEN_RELEASE_BUCKET": BUCKET,
            "WARDEN_RELEASE_PREFIX": prefix,
            "WARDEN_RELEASE_ENDPOINT_URL": endpoint,
            "WARDEN_RELEASE_ACTOR": "ci-bot",
            **env,
        },
        timeout=120,
        check=False,
    )


def test_keys_ship_verify_and_pull_from_the_command_line(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    private = tmp_path / "secrets" / "release.pem"
    private.parent.mkdir()
    made = cli(s3_endpoint, prefix, "keys", "generate", "--out", str(private), "--comment", "ci")
    assert made.returncode == 0, made.stderr
    assert private.stat().st_mode & 0o777 == 0o600
    entry = orjson.loads(made.stdout)
    trusted = tmp_path / "trusted.json"
    trusted.write_bytes(orjson.dumps({"keys": [entry]}))
    artifact, _ = fake_artifact(tmp_path / "art", "cli")
    ship = ("release", "ship", "--artifact", str(artifact), "--channel", "prod", "--why", "merge")
    unsigned = cli(s3_endpoint, prefix, *ship, "--require-signing")
    assert unsigned.returncode == 1 and "no signing key" in unsigned.stderr
    assert len(unsigned.stderr.strip().splitlines()) == 1, unsigned.stderr
    # CI: the secret store hands the PEM over in an environment variable
    shipped = cli(
        s3_endpoint, prefix, *ship, "--require-signing", WARDEN_SIGNING_KEY=private.read_text()
    )
    assert shipped.returncode == 0, shipped.stderr
    verify = ("release", "verify", "--channel", "prod", "--trusted-keys", str(trusted))
    verified = cli(s3_endpoint, prefix, *verify)
    assert verified.returncode == 0 and verified.stdout.startswith("verified: prod -> ")
    pulled = cli(
        s3_endpoint,
        prefix,
        *("pull", "--channel", "prod", "--dest", str(tmp_path / "node")),
        WARDEN_TRUSTED_KEYS=str(trusted),
    )
    assert pulled.returncode == 0 and pulled.stdout.startswith("installed: "), pulled.stderr
    assert "warning" not in pulled.stderr
    public = cli(s3_endpoint, prefix, "keys", "public", "--key-file", str(private))
    assert orjson.loads(public.stdout)["keyid"] == entry["keyid"]
    mallory = tmp_path / "mallory.json"
    mallory.write_bytes(
        orjson.dumps(
            {
                "keys": [
                    orjson.loads(
                        cli(
                            s3_endpoint,
                            prefix,
                            "keys",
                            "generate",
                            "--out",
                            str(tmp_path / "m.pem"),
                        ).stdout
                    )
                ]
            }
        )
    )
    wrong = cli(s3_endpoint, prefix, *verify[:-1], str(mallory))
    assert wrong.returncode == 1 and "not trusted here" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_keys_are_never_written_into_a_checkout(tmp_path: Path) -> None:
    target = ROOT / "release-key.pem"
    done = cli("http://127.0.0.1:9", "p", "keys", "generate", "--out", str(target))
    assert done.returncode == 1 and "git work tree" in done.stderr
    assert not target.exists()


def test_a_kms_style_signing_command_signs_and_a_mismatched_one_is_caught(
    s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    """WARDEN_SIGNING_COMMAND: the key stays in the signing service (openssl stands in for
    ``aws kms sign``); the SDK checks each signature against the given public key."""
    pem, signer = new_key()
    (tmp_path / "kms.pem").write_bytes(pem)
    command = f"openssl pkeyutl -sign -rawin -inkey {tmp_path / 'kms.pem'} -in {{message}}"
    public = base64.b64encode(signer.public_key).decode()
    artifact, _ = fake_artifact(tmp_path / "art", "kms")
    ship = ("release", "ship", "--artifact", str(artifact), "--channel", "prod", "--why", "kms")
    other = base64.b64encode(new_key()[1].public_key).decode()
    mismatched = cli(
        s3_endpoint,
        prefix,
        *ship,
        WARDEN_SIGNING_COMMAND=command,
        WARDEN_SIGNING_PUBLIC_KEY=other,
    )
    assert mismatched.returncode == 1 and "does not verify" in mismatched.stderr
    shipped = cli(
        s3_endpoint,
        prefix,
        *ship,
        WARDEN_SIGNING_COMMAND=command,
        WARDEN_SIGNING_PUBLIC_KEY=public,
    )
    assert shipped.returncode == 0, shipped.stderr
    store = signed_store(s3_endpoint, prefix, None)
    assert pull(store, "prod", tmp_path / "node", trust=pinned(tmp_path, signer)).status == (
        "installed"
    )

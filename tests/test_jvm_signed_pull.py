"""Signed releases from the JVM: ``PullCli pull --trusted-keys FILE`` against a real S3 server
(moto_server), with the same refusals as the Python puller (tests/test_signed_releases.py) and
the same ``DEST/channel-state.json``.

Each case makes its releases with a signing store (tests/signing_keys.py), hands the JVM the plan
``warden-algos release presign --properties`` prints (it carries the channel statement and the
release signature), and checks the node's folder from Python. The attacker can write anything to
the bucket, hence to the plan, but holds no release key. Every refusal must come before the
download: nothing in ``.partial``, the installed release kept.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.delivery.errors import SignatureError
from warden_algos.delivery.pull import installed, pull
from warden_algos.delivery.signing import KeySigner, TrustedKeys, format_time
from warden_algos.delivery.store import ReleaseStore
from warden_algos.delivery.trust import STATE_FILE, ChannelState

from . import test_jvm_pull
from .signing_keys import new_key, signed_store, trusted_keys_file
from .test_deploy import fake_artifact, published, run_program
from .test_jvm_pull import Pulled, java_pull, java_pull_failing, make_plan, run_java_pull
from .test_signed_releases import put, raw

# The built harness, shared with test_jvm_pull (built once for all puller modules).
classpath = test_jvm_pull.classpath


def sequence_of(store: ReleaseStore, channel: str = "prod") -> int:
    pointer = store.channel(channel)
    assert pointer is not None and pointer.statement is not None
    sequence: int = orjson.loads(pointer.statement.payload_bytes())["sequence"]
    return sequence


def pinned(tmp_path: Path, *signers: KeySigner, **kwargs: Any) -> Path:
    return trusted_keys_file(tmp_path / f"trusted-{len(signers)}.json", *signers, **kwargs)


def keys(path: Path) -> tuple[str, str]:
    return ("--trusted-keys", str(path))


def refused(
    classpath: str, plan: Path, dest: Path, trusted: Path, *words: str, kept: str | None = None
) -> str:
    """The Java pull is refused in one line holding ``words``, before any download, and the
    installed release (``kept``, or none) is untouched."""
    stderr = java_pull_failing(classpath, plan, dest, *keys(trusted))
    errors = [line for line in stderr.splitlines() if "pull: error: " in line]
    assert len(errors) == 1, stderr
    for word in words:
        assert word in errors[0], stderr
    have = installed(dest)
    assert (have and have.release_id) == kept
    partial = dest / ".partial"
    assert not partial.exists() or not any(partial.iterdir()), "downloaded before verifying"
    return errors[0]


@pytest.fixture
def key() -> KeySigner:
    return new_key()[1]


def test_java_installs_a_signed_release_and_remembers_its_sequence(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    one = published(store, tmp_path / "art", "one")
    store.promote("prod", one, why="first")
    trusted, dest = pinned(tmp_path, key), tmp_path / "node"
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    assert "channel_statement=" in plan.read_text() and "release_signature=" in plan.read_text()

    done = run_java_pull(classpath, plan, dest, *keys(trusted))
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr  # keys pinned: no unsigned warning
    release = store.release(one)
    assert release is not None
    assert done.stdout.split() == ["installed", one, str(release.manifest.size), "1"]
    assert run_program(dest)["tag"] == "one"
    # the Python puller's reader accepts the state the JVM wrote
    state = ChannelState.load(dest).channels["prod"]
    assert (state.sequence, state.release_id) == (sequence_of(store), one)
    assert (dest / "current" / "release.json").read_bytes() == raw(store, store.release_key(one))

    assert java_pull(classpath, plan, dest, *keys(trusted)) == Pulled("current", one, 0, 0)


def test_an_unsigned_plan_is_refused_when_keys_are_pinned_and_warned_about_when_not(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    unsigned = signed_store(s3_endpoint, prefix, None)
    one = published(unsigned, tmp_path / "art", "one")
    unsigned.promote("prod", one, why="unsigned")
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    assert "channel_statement=" not in plan.read_text()
    dest = tmp_path / "node"
    refused(classpath, plan, dest, pinned(tmp_path, key), "'prod' is unsigned", "refusing it")
    assert not (dest / STATE_FILE).exists()

    done = run_java_pull(classpath, plan, dest)  # no keys: installs, and says what that means
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "pull: warning: no pinned release keys (--trusted-keys or WARDEN_TRUSTED_KEYS): releases "
        "are installed unsigned, so anyone who can write to the bucket can run code on this node"
    ]


def test_a_tampered_release_record_is_refused_before_the_download(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    one = published(store, tmp_path / "art", "one")
    store.promote("prod", one, why="first")
    record = orjson.loads(raw(store, store.release_key(one)))
    record["published_by"] = "mallory"  # any byte: the statement covers the record's sha256
    put(store, store.release_key(one), orjson.dumps(record, option=orjson.OPT_INDENT_2))
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    refused(classpath, plan, tmp_path / "node", pinned(tmp_path, key), "(tampered record)")


def test_a_statement_by_an_unpinned_key_is_refused(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    mallory = new_key()[1]
    store = signed_store(s3_endpoint, prefix, mallory)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="mallory's")
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    line = refused(classpath, plan, tmp_path / "node", pinned(tmp_path, key), "not trusted here")
    assert "is not signed by a trusted key" in line


def test_a_tampered_statement_payload_does_not_verify(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    """The bucket writer points prod at other bytes and edits the signed payload to match."""
    store = signed_store(s3_endpoint, prefix, key)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="first")
    _, evil = fake_artifact(tmp_path / "evil", "evil")
    pointer = orjson.loads(raw(store, store.channel_key("prod")))
    payload = orjson.loads(base64.b64decode(pointer["statement"]["payload"]))
    payload["sha256"], payload["size"] = evil.sha256, evil.size
    pointer["statement"]["payload"] = base64.b64encode(orjson.dumps(payload)).decode()
    pointer["sha256"], pointer["size"] = evil.sha256, evil.size
    put(store, store.channel_key("prod"), orjson.dumps(pointer))
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    refused(
        classpath, plan, tmp_path / "node", pinned(tmp_path, key), "does not verify (tampered?)"
    )


def test_an_expired_statement_is_refused_until_the_channel_is_refreshed(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    stale = signed_store(s3_endpoint, prefix, key, statement_days=-1)
    stale.promote("prod", published(stale, tmp_path / "art", "one"), why="first")
    trusted, dest = pinned(tmp_path, key), tmp_path / "node"
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    refused(classpath, plan, dest, trusted, "expired at", "a freeze?", "release refresh")
    signed_store(s3_endpoint, prefix, key).refresh("prod", why="weekly re-sign")
    fresh = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest, *keys(trusted))
    assert fresh.status == "installed"


def test_a_replayed_older_plan_is_refused_and_a_signed_rollback_is_followed(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    trusted, dest = pinned(tmp_path, key), tmp_path / "node"
    one = published(store, tmp_path / "a", "one")
    store.promote("prod", one, why="first")
    old_plan = make_plan(s3_endpoint, prefix, tmp_path)  # valid, signed, and yesterday's
    oldest = sequence_of(store)
    assert java_pull(classpath, old_plan, dest, *keys(trusted)).release_id == one
    two = published(store, tmp_path / "b", "two")
    store.promote("prod", two, why="second")
    assert java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest, *keys(trusted))[
        :2
    ] == ("installed", two)
    newest = sequence_of(store)

    line = refused(
        classpath,
        old_plan,
        dest,
        trusted,
        "older than the one this node accepted",
        "a rollback attempt?",
        f"(sequence {newest}, {two}, signed",
        kept=two,
    )
    assert f"points to {one} with a statement (sequence {oldest}," in line
    assert ChannelState.load(dest).channels["prod"].sequence == newest  # never lowered

    store.rollback("prod", why="two is broken", to_release=one)  # a new, signed move
    back = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest, *keys(trusted))
    assert back == Pulled("installed", one, 0, 0)  # still unpacked as previous: no download
    assert ChannelState.load(dest).channels["prod"].sequence == sequence_of(store) > newest
    assert run_program(dest)["tag"] == "one"


def test_key_rotation_two_keys_pinned_then_the_old_one_ends(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path
) -> None:
    old, new = new_key()[1], new_key()[1]
    by_old = signed_store(s3_endpoint, prefix, old)
    one = published(by_old, tmp_path / "a", "one")
    by_old.promote("prod", one, why="before the rotation")
    before = make_plan(s3_endpoint, prefix, tmp_path)  # signed by the old key only
    both = pinned(tmp_path, old, new)
    node = tmp_path / "node"
    assert java_pull(classpath, before, node, *keys(both)).release_id == one
    # CI switches to the new key: the running release is re-signed, other signatures kept
    by_new = signed_store(s3_endpoint, prefix, new)
    assert len(by_new.sign_release(one).signatures) == 2
    two = published(by_new, tmp_path / "b", "two")
    by_new.promote("prod", two, why="after the rotation")
    after = make_plan(s3_endpoint, prefix, tmp_path)
    assert java_pull(classpath, after, node, *keys(both))[:2] == ("installed", two)
    # the window ends: what the new key signed is still trusted, the old key's statement is not
    yesterday = format_time(datetime.now(UTC) - timedelta(days=1))
    ended = trusted_keys_file(tmp_path / "ended.json", old, new, not_after={0: yesterday})
    assert java_pull(classpath, after, tmp_path / "node-2", *keys(ended))[:2] == ("installed", two)
    refused(classpath, before, tmp_path / "node-3", ended, f"was trusted until {yesterday}")


def test_python_and_java_take_turns_on_one_channel_state(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    """One DEST, one channel-state.json: a sequence either puller accepted refuses an older
    statement in the other."""
    store = signed_store(s3_endpoint, prefix, key)
    trusted, dest = pinned(tmp_path, key), tmp_path / "node"
    trust = TrustedKeys.load(trusted)
    store.promote("prod", published(store, tmp_path / "a", "one"), why="first")
    first_plan = make_plan(s3_endpoint, prefix, tmp_path)
    two = published(store, tmp_path / "b", "two")
    store.promote("prod", two, why="second")
    second_pointer = raw(store, store.channel_key("prod"))
    assert pull(store, "prod", dest, trust=trust).release_id == two  # Python records sequence 2

    refused(classpath, first_plan, dest, trusted, "older than the one this node accepted", kept=two)

    three = published(store, tmp_path / "c", "three")
    store.promote("prod", three, why="third")
    by_java = java_pull(classpath, make_plan(s3_endpoint, prefix, tmp_path), dest, *keys(trusted))
    assert by_java[:2] == ("installed", three)  # Java records sequence 3 in the same file
    assert ChannelState.load(dest).channels["prod"].sequence == sequence_of(store)

    put(store, store.channel_key("prod"), second_pointer)  # the bucket writer replays sequence 2
    with pytest.raises(SignatureError, match="older than the one this node accepted"):
        pull(store, "prod", dest, trust=trust)
    have = installed(dest)
    assert have is not None and have.release_id == three


def test_a_symlinked_channel_state_is_refused_and_its_target_untouched(
    classpath: str, s3_endpoint: str, prefix: str, tmp_path: Path, key: KeySigner
) -> None:
    store = signed_store(s3_endpoint, prefix, key)
    store.promote("prod", published(store, tmp_path / "art", "one"), why="first")
    dest = tmp_path / "node"
    dest.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text("keep")
    (dest / STATE_FILE).symlink_to(outside)
    plan = make_plan(s3_endpoint, prefix, tmp_path)
    line = refused(classpath, plan, dest, pinned(tmp_path, key), STATE_FILE, "symlink")
    assert "not touching it" in line
    assert outside.read_text() == "keep" and (dest / STATE_FILE).is_symlink()


# malformed input: one line, exit 1, never a stack trace ------------------------------------


def plan_with(tmp_path: Path, name: str, **fields: str) -> Path:
    """A plan whose URLs lead nowhere: every case here must be refused before any request."""
    lines = {
        "channel": "prod",
        "release_id": "0.1.0+x",
        "mode": "onedir",
        "size": "1",
        "sha256": "0" * 64,
        "url": "http\\://127.0.0.1\\:9/a",
        "release_url": "http\\://127.0.0.1\\:9/b",
        **fields,
    }
    plan = tmp_path / f"{name}.properties"
    plan.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    return plan


def b64(document: Any) -> str:
    data = document if isinstance(document, bytes) else orjson.dumps(document)
    return base64.b64encode(data).decode()


def test_malformed_signed_input_is_a_one_line_error(
    classpath: str, tmp_path: Path, key: KeySigner
) -> None:
    """What a bucket writer can put in the plan (garbage, oversized or out-of-shape envelopes)
    and an operator's broken trusted-keys file: each refused in one line, in one JVM per case."""
    trusted = pinned(tmp_path, key)
    signature = {"keyid": "a" * 64, "sig": "A" * 86 + "=="}
    envelope = {"payloadType": "x", "payload": "e30=", "signatures": [signature]}
    cases = {
        "not base64": ({"channel_statement": "%%%"}, "is not a valid DSSE envelope: not base64"),
        "not JSON": ({"channel_statement": b64(b"{nope")}, "is not a valid DSSE envelope: JSON"),
        "nine signatures": (
            {"channel_statement": b64({**envelope, "signatures": [signature] * 9})},
            '"signatures" is not a list of 1 to 8 items',
        ),
        "oversized": ({"channel_statement": "A" * 70_000}, "over 65536 characters"),
        "deeply nested": (
            {"channel_statement": b64(b"[" * 1000)},
            "is not a valid DSSE envelope: JSON: nested too deeply",
        ),
        "extra field": (
            {"channel_statement": b64({**envelope, "evil": 1})},
            'unexpected field "evil"',
        ),
    }
    for name, (fields, words) in cases.items():
        plan = plan_with(tmp_path, name.replace(" ", "-"), **fields)
        stderr = java_pull_failing(classpath, plan, tmp_path / "n", *keys(trusted))
        assert words in stderr, (name, stderr)
        assert len([line for line in stderr.splitlines() if "error" in line]) == 1, stderr

    wrong = orjson.loads(trusted.read_bytes())
    wrong["keys"][0]["keyid"] = "0" * 64
    (tmp_path / "wrong.json").write_bytes(orjson.dumps(wrong))
    stderr = java_pull_failing(
        classpath, plan_with(tmp_path, "any"), tmp_path / "n", *keys(tmp_path / "wrong.json")
    )
    assert "is not the sha256 of its public_key" in stderr
    assert not (tmp_path / "n" / "releases").exists()

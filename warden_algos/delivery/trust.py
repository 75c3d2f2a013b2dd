"""What a node checks before it downloads anything, when it pins release keys.

The order matters: the channel pointer is the only thing a pull reads first, so its signed
statement is checked first (trusted key, this channel, not expired, not older than the last one
this node accepted); then the release record's exact bytes must hash to what the statement says,
and the release's own signature must verify; only then are the artifact's sha256 and size, taken
from the signed statement, used to download and check the bytes.

``DEST/channel-state.json`` remembers, per channel, the largest statement ``sequence`` this node
accepted (``{"channels": {"prod": {"sequence": N, "release_id": ..., "signed_at": ...}}}``); the
Java puller reads and writes the same file. It is written atomically under the pull's lock and
never followed if it is a symlink.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict, Field

from .dsse import Envelope
from .errors import SignatureError
from .records import CHANNEL, RELEASE_ID, Pointer
from .signing import (
    CHANNEL_TYPE,
    RELEASE_TYPE,
    ChannelStatement,
    ReleaseStatement,
    Time,
    TrustedKeys,
    format_time,
    parse_statement,
)

STATE_FILE = "channel-state.json"
_MAX_STATE_BYTES = 1 << 20


def verify_channel(trust: TrustedKeys, pointer: Pointer, channel: str) -> ChannelStatement:
    """The channel's signed statement, checked; the pointer's own fields must agree with it."""
    what = f"channel {channel!r}"
    if pointer.statement is None:
        raise SignatureError(
            f"{what} is unsigned and this node pins release keys: refusing it (sign releases "
            "with WARDEN_SIGNING_KEY when promoting, or `release refresh` the channel)"
        )
    payload = trust.verify(pointer.statement, CHANNEL_TYPE, f"{what}'s statement")
    statement = parse_statement(ChannelStatement, payload, f"{what}'s signed statement")
    if statement.channel != channel:
        raise SignatureError(
            f"{what} carries a statement signed for channel {statement.channel!r}: refusing it"
        )
    now = format_time(datetime.now(UTC))
    if now >= statement.expires:
        raise SignatureError(
            f"{what}'s statement (signed {statement.signed_at}) expired at {statement.expires}: "
            "a stale pointer (a freeze?); the channel must be re-signed (release refresh)"
        )
    if (
        pointer.release_id != statement.release_id
        or pointer.sha256 != statement.sha256
        or pointer.size != statement.size
        or pointer.mode != statement.mode
    ):
        raise SignatureError(f"{what}'s pointer disagrees with its signed statement: refusing it")
    return statement


def check_not_older(dest: Path, statement: ChannelStatement) -> None:
    """Refuse a statement older than the newest one this node accepted for its channel."""
    last = ChannelState.load(dest).channels.get(statement.channel)
    if last is not None and statement.sequence < last.sequence:
        raise SignatureError(
            f"channel {statement.channel!r} points to {statement.release_id} with a statement "
            f"(sequence {statement.sequence}, signed {statement.signed_at}) older than the one "
            f"this node accepted (sequence {last.sequence}, {last.release_id}, signed "
            f"{last.signed_at}): a rollback attempt? refusing it; a real rollback is a new "
            "signed move (release rollback)"
        )


def verify_release(
    trust: TrustedKeys,
    statement: ChannelStatement,
    record: bytes,
    envelope: Envelope | None,
) -> None:
    """The release record's bytes are the ones the channel statement names, and the release's
    own signature verifies and agrees."""
    what = f"release {statement.release_id}"
    digest = hashlib.sha256(record).hexdigest()
    if digest != statement.record_sha256:
        raise SignatureError(
            f"{what}: the release record's sha256 {digest[:12]}... is not the signed "
            f"{statement.record_sha256[:12]}... (tampered record): refusing it"
        )
    if envelope is None:
        raise SignatureError(f"{what} has no release signature (release.dsse.json): refusing it")
    payload = trust.verify(envelope, RELEASE_TYPE, f"{what}'s signature")
    signed = parse_statement(ReleaseStatement, payload, f"{what}'s signed statement")
    if (
        signed.release_id != statement.release_id
        or signed.record_sha256 != digest
        or signed.sha256 != statement.sha256
        or signed.size != statement.size
        or signed.mode != statement.mode
    ):
        raise SignatureError(f"{what}: its signature is for other bytes: refusing it")


class Accepted(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sequence: int = Field(ge=1, le=2**63 - 1, strict=True)
    release_id: str = Field(pattern=RELEASE_ID)
    signed_at: Time


class ChannelState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: dict[str, Accepted] = Field(default_factory=dict, max_length=1024)

    @classmethod
    def load(cls, dest: Path) -> ChannelState:
        """The state in ``dest``; absent means nothing accepted yet. A state that cannot be read
        is an error, not a fresh start: forgetting it would re-open the door to rollbacks."""
        path = dest / STATE_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return cls()
        except OSError as error:
            raise SignatureError(
                f"cannot read {path} ({error.strerror}; a symlink there is refused)"
            ) from None
        with os.fdopen(fd, "rb") as file:
            raw = file.read(_MAX_STATE_BYTES + 1)
        try:
            state = cls.model_validate(orjson.loads(raw))
        except ValueError as error:
            raise SignatureError(
                f"{path} is not a valid channel state ({str(error).splitlines()[0]}): fix or "
                "remove it by hand (removing it forgets which statements this node has seen)"
            ) from None
        for name in state.channels:
            if re.fullmatch(CHANNEL, name) is None:
                raise SignatureError(f"{path} names an invalid channel {name[:80]!r}")
        return state

    def accept(self, dest: Path, statement: ChannelStatement) -> None:
        """Remember ``statement`` as the newest for its channel (never lowers a sequence)."""
        last = self.channels.get(statement.channel)
        if last is not None and last.sequence >= statement.sequence:
            return
        channels = {
            **self.channels,
            statement.channel: Accepted(
                sequence=statement.sequence,
                release_id=statement.release_id,
                signed_at=statement.signed_at,
            ),
        }
        data = orjson.dumps(
            ChannelState(channels=channels).model_dump(), option=orjson.OPT_INDENT_2
        )
        temporary = dest / f".{STATE_FILE}.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(temporary, flags, 0o644), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, dest / STATE_FILE)  # replaces a link itself, never its target

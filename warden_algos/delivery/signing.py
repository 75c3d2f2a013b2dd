"""Signed releases: what the release key signs, how a node checks it, and where keys come from.

The bucket is not trusted. Whoever can write to it could otherwise run code on every node (the
pull smoke-tests the program it unpacks), so the facts a node acts on are signed with an Ed25519
key that lives in the CI secret store or a KMS, never in the repository or the bucket, and a node
checks them against public keys pinned on the node itself. The properties are TUF's core ones,
without a TUF server:

- **integrity**: a node installs only bytes whose sha256 a trusted key signed;
- **rollback protection**: every channel move is a new signed *channel statement* with a larger
  ``sequence``; a node remembers the largest it accepted (``DEST/channel-state.json``) and refuses
  an older one, so a bucket writer cannot replay yesterday's pointer to a vulnerable release. A
  deliberate rollback is a new, signed move (``release rollback``), with a larger sequence;
- **freeze protection**: a channel statement ``expires``; an expired one is refused, so serving
  a stale pointer for ever is noticed (``release refresh`` re-signs an idle channel);
- **key rotation**: a node pins a set of keys, each optionally with a ``not_after`` end of trust;
  during a rotation window both the old and the new key are pinned and either signature verifies.

Formats (the Java puller, ``examples/jvm_host``, implements the same checks):

- Signatures are DSSE v1 envelopes (https://github.com/secure-systems-lab/dsse):
  ``{"payloadType": T, "payload": base64(P), "signatures": [{"keyid": K, "sig": base64(S)}]}``
  where ``S`` is the Ed25519 signature of ``PAE(T, P) = b"DSSEv1 " + len(T) + b" " + T + b" " +
  len(P) + b" " + P`` (lengths as ASCII decimal byte counts). ``K`` is the hex sha256 of the raw
  32-byte public key. Distinct payload types keep a release signature from passing as a channel
  statement.
- The release statement (type :data:`RELEASE_TYPE`, at ``releases/<id>/release.dsse.json``): the
  release id, the sha256 of the exact ``release.json`` bytes, and the artifact's sha256, size and
  mode. Written at publish; re-signed (other keys' signatures kept) by ``release sign``.
- The channel statement (type :data:`CHANNEL_TYPE`, inside the channel pointer as ``statement``):
  channel, release id, record sha256, artifact sha256, size, mode, ``sequence``, ``signed_at``,
  ``expires``. Written by every promote, rollback, ship and refresh.
- Times are RFC 3339 UTC with a ``Z`` and whole seconds (``2026-12-02T04:00:00Z``).
- The trusted-keys file a node pins (:class:`TrustedKeys`):
  ``{"keys": [{"keyid": K, "public_key": base64(raw 32 bytes), "not_after": "...Z" | null}]}``.

Nothing here unpickles or executes anything read from the bucket: envelopes and statements are
JSON validated by pydantic models with bounded sizes, signatures are checked by ``cryptography``.
``cryptography`` is imported only when a key is used.
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from warden_algos.executable.manifest import ArtifactSize, Sha256

from .dsse import MAX_SIGNATURES, Envelope, Signature, keyid_of, pae
from .errors import ReleaseError, SignatureError
from .records import CHANNEL, RELEASE_ID

RELEASE_TYPE = "application/vnd.warden-algos.release+json"
CHANNEL_TYPE = "application/vnd.warden-algos.channel+json"
#: RFC 3339 UTC, whole seconds: what every signed time looks like (easy to parse identically in
#: Python and Java, and to compare as text).
TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
#: A channel statement is valid for this long unless the signer says otherwise.
DEFAULT_EXPIRES_DAYS = 30
MAX_TRUSTED_KEYS = 16
_SIGNING_TIMEOUT_S = 60

Time = Annotated[str, Field(pattern=TIME)]
KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Base64Key = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{43}=$")]  # 32 bytes


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ReleaseStatement(BaseModel):
    """What the release key says about a published release."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release_id: str = Field(pattern=RELEASE_ID)
    record_sha256: Sha256
    sha256: Sha256
    size: ArtifactSize
    mode: str = Field(pattern=r"^(onedir|onefile)$")
    signed_at: Time


class ChannelStatement(BaseModel):
    """What the release key says a channel runs, from when, until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(pattern=CHANNEL)
    release_id: str = Field(pattern=RELEASE_ID)
    record_sha256: Sha256
    sha256: Sha256
    size: ArtifactSize
    mode: str = Field(pattern=r"^(onedir|onefile)$")
    sequence: int = Field(ge=1, le=2**63 - 1, strict=True)
    signed_at: Time
    expires: Time


# keys a node trusts ---------------------------------------------------------------------------


class TrustedKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    keyid: KeyId
    public_key: Base64Key
    not_after: Time | None = None
    comment: str = Field(default="", max_length=200)

    def raw(self) -> bytes:
        return base64.b64decode(self.public_key)


class TrustedKeys(BaseModel):
    """The public keys a node pins, read from a file the operator installs
    (``--trusted-keys FILE`` or ``WARDEN_TRUSTED_KEYS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[TrustedKey] = Field(min_length=1, max_length=MAX_TRUSTED_KEYS)

    @classmethod
    def load(cls, path: Path) -> TrustedKeys:
        from .store import parse_record

        try:
            raw = path.read_bytes()
        except OSError as error:
            raise SignatureError(f"cannot read the trusted keys {path}: {error.strerror}") from None
        keys = parse_record(cls, raw, str(path))
        for key in keys.keys:
            if keyid_of(key.raw()) != key.keyid:
                raise SignatureError(
                    f"{path}: key {key.keyid[:12]}... is not the sha256 of its public_key: "
                    "copy the entry `warden-algos keys public` printed, whole"
                )
        return keys

    def verify(self, envelope: Envelope, payload_type: str, what: str) -> bytes:
        """The envelope's payload if a key trusted now signed it; else a :class:`SignatureError`
        saying why (not a statement of that kind, signed only by unknown keys, a signature that
        does not verify, or by a key whose trust has ended)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        if envelope.payloadType != payload_type:
            raise SignatureError(
                f"{what}: the envelope holds a {envelope.payloadType!r} statement, "
                f"not {payload_type!r}"
            )
        payload = envelope.payload_bytes()
        message = pae(payload_type, payload)
        now = format_time(datetime.now(UTC))
        by_id = {key.keyid: key for key in self.keys}
        problems = []
        for signature in envelope.signatures:
            key = by_id.get(signature.keyid)
            short = signature.keyid[:12]
            if key is None:
                problems.append(f"key {short}... is not trusted here")
                continue
            if key.not_after is not None and now >= key.not_after:
                problems.append(f"key {short}... was trusted until {key.not_after}")
                continue
            try:
                Ed25519PublicKey.from_public_bytes(key.raw()).verify(
                    base64.b64decode(signature.sig), message
                )
            except InvalidSignature:
                problems.append(f"the signature by key {short}... does not verify (tampered?)")
                continue
            return payload
        raise SignatureError(f"{what} is not signed by a trusted key: {'; '.join(problems)}")


def trusted_keys_from(path: Path | None) -> TrustedKeys | None:
    """The pinned keys from ``path``, else ``$WARDEN_TRUSTED_KEYS``, else None (no checking)."""
    if path is None and os.environ.get("WARDEN_TRUSTED_KEYS"):
        path = Path(os.environ["WARDEN_TRUSTED_KEYS"])
    return None if path is None else TrustedKeys.load(path)


_Statement = TypeVar("_Statement", bound=BaseModel)


def parse_statement(model: type[_Statement], payload: bytes, what: str) -> _Statement:
    """A verified payload as ``model``; a malformed one (signed, but not what this SDK writes)
    is a one-line :class:`SignatureError`."""
    from .store import parse_record

    try:
        return parse_record(model, payload, what)
    except ReleaseError as error:
        raise SignatureError(str(error)) from None


# keys a publisher signs with ------------------------------------------------------------------


class Signer(Protocol):
    """Something that signs bytes with one Ed25519 key whose public half it knows."""

    public_key: bytes

    def sign(self, message: bytes) -> bytes: ...


class KeySigner:
    """A private key held in memory: from the CI secret store (``WARDEN_SIGNING_KEY``, PEM) or a
    file (``WARDEN_SIGNING_KEY_FILE``)."""

    def __init__(self, pem: bytes, where: str) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as error:
            raise SignatureError(
                f"{where} is not an unencrypted PEM private key ({error})"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"{where} holds a {type(key).__name__}, not an Ed25519 key")
        self._key = key
        self.public_key = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


class CommandSigner:
    """A key that never leaves a KMS or an HSM: ``command`` (split like a shell would, never run
    by one) signs the message and prints its Ed25519 signature, raw or base64, on stdout. The
    message is on its stdin, or, where the command names ``{message}``, in a private temporary
    file of that name (``aws kms sign --message fileb://{message} ...``). Its public key is given,
    and every signature is checked against it before use, so a misconfigured command fails here,
    not on every node."""

    def __init__(self, command: str, public_key: bytes) -> None:
        self.argv = shlex.split(command)
        if not self.argv:
            raise SignatureError("WARDEN_SIGNING_COMMAND is empty")
        self.public_key = public_key

    def sign(self, message: bytes) -> bytes:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        with tempfile.TemporaryDirectory(prefix="warden-sign-") as folder:
            argv, stdin = self.argv, message
            if any("{message}" in part for part in argv):
                path = Path(folder) / "message"
                path.write_bytes(message)  # the folder is 0700: nobody else reads it
                argv = [part.replace("{message}", str(path)) for part in argv]
                stdin = b""
            try:
                done = subprocess.run(
                    argv, input=stdin, capture_output=True, timeout=_SIGNING_TIMEOUT_S
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise SignatureError(f"the signing command failed to run: {error}") from None
        if done.returncode != 0:
            tail = " | ".join(done.stderr.decode(errors="replace").strip().splitlines())[-300:]
            raise SignatureError(f"the signing command exited {done.returncode}: {tail}")
        signature = done.stdout if len(done.stdout) == 64 else _base64_or_none(done.stdout)
        if signature is None or len(signature) != 64:
            raise SignatureError(
                "the signing command printed neither a 64-byte signature nor its base64"
            )
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            raise SignatureError(
                "the signing command's signature does not verify with WARDEN_SIGNING_PUBLIC_KEY: "
                "is it the public half of the key the command signs with?"
            ) from None
        return signature


def _base64_or_none(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except binascii.Error:
        return None


def decode_public_key(text: str, where: str) -> bytes:
    """A public key given as base64 of its 32 raw bytes (what ``keys public`` prints)."""
    raw = _base64_or_none(text.encode())
    if raw is None or len(raw) != 32:
        raise SignatureError(f"{where} must be the base64 of a raw 32-byte Ed25519 public key")
    return raw


def signer_from_environment() -> Signer | None:
    """The release key, if this process has one: ``WARDEN_SIGNING_KEY`` (PEM text, e.g. a CI
    secret), ``WARDEN_SIGNING_KEY_FILE`` (a PEM file) or ``WARDEN_SIGNING_COMMAND`` with
    ``WARDEN_SIGNING_PUBLIC_KEY`` (a KMS). None when none is set; more than one is an error."""
    given = [
        name
        for name in ("WARDEN_SIGNING_KEY", "WARDEN_SIGNING_KEY_FILE", "WARDEN_SIGNING_COMMAND")
        if os.environ.get(name)
    ]
    if len(given) > 1:
        raise SignatureError(f"set one way to sign, not {' and '.join(given)}")
    if not given:
        return None
    if given[0] == "WARDEN_SIGNING_KEY":
        return KeySigner(os.environ["WARDEN_SIGNING_KEY"].encode(), "WARDEN_SIGNING_KEY")
    if given[0] == "WARDEN_SIGNING_KEY_FILE":
        path = Path(os.environ["WARDEN_SIGNING_KEY_FILE"])
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise SignatureError(f"cannot read WARDEN_SIGNING_KEY_FILE {path}: {error}") from None
        return KeySigner(pem, str(path))
    public = os.environ.get("WARDEN_SIGNING_PUBLIC_KEY", "")
    if not public:
        raise SignatureError("WARDEN_SIGNING_COMMAND needs WARDEN_SIGNING_PUBLIC_KEY beside it")
    return CommandSigner(
        os.environ["WARDEN_SIGNING_COMMAND"],
        decode_public_key(public, "WARDEN_SIGNING_PUBLIC_KEY"),
    )


def sign(
    signer: Signer, payload_type: str, payload: bytes, keep: Sequence[Signature] = ()
) -> Envelope:
    """An envelope of ``payload`` signed by ``signer``, plus ``keep`` (other keys' signatures of
    the same payload, kept through a rotation)."""
    signature = Signature(
        keyid=keyid_of(signer.public_key),
        sig=base64.b64encode(signer.sign(pae(payload_type, payload))).decode(),
    )
    others = [kept for kept in keep if kept.keyid != signature.keyid][: MAX_SIGNATURES - 1]
    return Envelope(
        payloadType=payload_type,
        payload=base64.b64encode(payload).decode(),
        signatures=[signature, *others],
    )


def statement_bytes(statement: BaseModel) -> bytes:
    """The one byte form of a statement: sorted keys, compact."""
    return orjson.dumps(statement.model_dump(), option=orjson.OPT_SORT_KEYS)


def signer_trust(signer: Signer, also: TrustedKeys | None) -> TrustedKeys:
    """What a signer accepts a release signature from: its own key, and the pinned keys if the
    signing machine has them too (a rotation: releases signed by the previous key)."""
    own = TrustedKey(
        keyid=keyid_of(signer.public_key),
        public_key=base64.b64encode(signer.public_key).decode(),
        comment="the signing key",
    )
    return TrustedKeys(keys=[own, *(also.keys if also else [])][:MAX_TRUSTED_KEYS])


def expiry(days: float) -> str:
    return format_time(datetime.now(UTC) + timedelta(days=days))


def trust_entry(
    public_key: bytes, not_after: str | None = None, comment: str = ""
) -> dict[str, Any]:
    """One entry of a trusted-keys file, for ``keys generate`` / ``keys public`` to print."""
    return TrustedKey(
        keyid=keyid_of(public_key),
        public_key=base64.b64encode(public_key).decode(),
        not_after=not_after,
        comment=comment,
    ).model_dump()

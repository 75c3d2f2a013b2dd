"""Publish, promote, roll back, read: every operation on the release bucket, over boto3.

With a signer (``signing.py``), every write is signed as well: a publish writes the release's
signed statement beside its record, and every pointer move carries a signed channel statement
(sequence, expiry), so nodes that pin the release keys need not trust the bucket.

Immutability and atomicity come from S3 itself, not from a lock service: a release record is
written with ``If-None-Match: *`` (so two publishers of one id cannot both win), a channel pointer
with ``If-Match: <etag>`` of the pointer the mover read (so a concurrent move is refused, not lost),
and the artifact lives under its own checksum (so a losing publisher's upload can never replace
the winner's bytes). Each pointer move appends one history object; nothing is ever rewritten.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from warden_algos.executable.manifest import Manifest, sha256_of

from .dsse import Envelope
from .errors import ReleaseError, SignatureError
from .records import RELEASE_ID, Move, Pointer, Release, now, valid_channel

if TYPE_CHECKING:
    from .signing import ReleaseStatement, Signer, TrustedKeys

__all__ = ["ReleaseError", "ReleaseStore", "parse_record"]

_Record = TypeVar("_Record", bound=BaseModel)


def parse_record(model: type[_Record], raw: bytes, where: str) -> _Record:
    """``raw`` as a ``model``, or a one-line :class:`ReleaseError`: bad JSON and failed
    validation both name the object and the first offending field."""
    try:
        return model.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as error:
        raise ReleaseError(f"{where} is not valid JSON ({error})") from None
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the document)"
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ReleaseError(
            f"{where} is not a valid {model.__name__.lower()} record: {field}: {first['msg']}{more}"
        ) from None


def actor() -> str:
    """Who is acting, for the audit history: CI's actor when in CI, else user@host."""
    for variable in ("WARDEN_RELEASE_ACTOR", "GITHUB_ACTOR"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (containers)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def default_release_id(manifest: Manifest) -> str:
    """``<version>+<commit>``: what CI publishes on merge. A build of an uncommitted tree should
    say so in an explicit id (test-deploy adds the checksum)."""
    commit = (manifest.git_commit or "nocommit")[:12]
    return f"{manifest.version}+{commit}"


def _precondition_failed(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _missing(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code in ("NoSuchKey", "404", "NotFound")


class ReleaseStore:
    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        *,
        signer: Signer | None = None,
        signer_trusts: TrustedKeys | None = None,
        statement_days: float | None = None,
    ) -> None:
        """``signer``: sign every publish and move with it. ``signer_trusts``: release
        signatures a move accepts besides the signer's own (a key rotation). ``statement_days``:
        how long a channel statement stays valid (default ``DEFAULT_EXPIRES_DAYS``)."""
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.signer = signer
        self.signer_trusts = signer_trusts
        self.statement_days = statement_days

    # keys --------------------------------------------------------------------------------
    def release_key(self, release_id: str) -> str:
        return f"{self.prefix}/releases/{release_id}/release.json"

    def release_signature_key(self, release_id: str) -> str:
        return f"{self.prefix}/releases/{release_id}/release.dsse.json"

    def blob_key(self, sha256: str, name: str) -> str:
        return f"{self.prefix}/blobs/sha256/{sha256}/{name}"

    def channel_key(self, channel: str) -> str:
        return f"{self.prefix}/channels/{channel}.json"

    def history_prefix(self, channel: str) -> str:
        return f"{self.prefix}/history/{channel}/"

    # reads -------------------------------------------------------------------------------
    def _get_raw(self, key: str) -> tuple[bytes, str] | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return answer["Body"].read(), answer["ETag"]

    def _get(self, model: type[_Record], key: str) -> _Record | None:
        """The record at ``key``, or None when absent; a malformed one is a one-line
        :class:`ReleaseError` naming the object (never a traceback)."""
        found = self._get_raw(key)
        return None if found is None else parse_record(model, found[0], self._where(key))

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def release(self, release_id: str) -> Release | None:
        return self._get(Release, self.release_key(release_id))

    def release_bytes(self, release_id: str) -> tuple[Release, bytes] | None:
        """The release and the exact bytes of its record (what signatures cover)."""
        key = self.release_key(release_id)
        found = self._get_raw(key)
        if found is None:
            return None
        return parse_record(Release, found[0], self._where(key)), found[0]

    def release_signature(self, release_id: str) -> Envelope | None:
        """The release's signed statement, or None when it was published unsigned."""
        found = self._release_signature(release_id)
        return None if found is None else found[0]

    def _release_signature(self, release_id: str) -> tuple[Envelope, str] | None:
        key = self.release_signature_key(release_id)
        found = self._get_raw(key)
        if found is None:
            return None
        try:
            return parse_record(Envelope, found[0], self._where(key)), found[1]
        except ReleaseError as error:
            raise SignatureError(str(error)) from None

    def releases(self) -> list[Release]:
        found = []
        for key in self._keys(f"{self.prefix}/releases/"):
            if key.endswith("/release.json"):
                record = self._get(Release, key)
                if record is not None:
                    found.append(record)
        return sorted(found, key=lambda release: release.published_at)

    def channel(self, channel: str) -> Pointer | None:
        found = self._read_pointer(channel)
        return None if found is None else found[0]

    def channels(self) -> list[Pointer]:
        root = f"{self.prefix}/channels/"
        pointers = []
        for key in self._keys(root):
            name = key[len(root) : -len(".json")]
            pointer = self.channel(name) if valid_channel(name) else None
            if pointer is not None:
                pointers.append(pointer)
        return sorted(pointers, key=lambda pointer: pointer.channel)

    def history(self, channel: str) -> list[Move]:
        self._check_channel(channel)
        moves = []
        for key in sorted(self._keys(self.history_prefix(channel))):
            record = self._get(Move, key)
            if record is not None:
                moves.append(record)
        return moves

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def _read_pointer(self, channel: str) -> tuple[Pointer, str] | None:
        found = self.pointer_or_broken(channel)
        if found is None:
            return None
        pointer, etag, error = found
        if pointer is None:
            raise ReleaseError(
                f"channel {channel!r} holds an unreadable pointer ({error}); "
                "release ship repairs it"
            )
        return pointer, etag

    def pointer_or_broken(
        self, channel: str
    ) -> tuple[Pointer | None, str, ReleaseError | None] | None:
        """(pointer, etag, None), or (None, etag, why) when the stored pointer is malformed, or
        None when the channel does not exist."""
        self._check_channel(channel)
        key = self.channel_key(channel)
        found = self._get_raw(key)
        if found is None:
            return None
        try:
            return parse_record(Pointer, found[0], self._where(key)), found[1], None
        except ReleaseError as error:
            return None, found[1], error

    # writes ------------------------------------------------------------------------------
    def publish(
        self,
        artifact: Path,
        manifest: Manifest,
        release_id: str | None = None,
        who: str | None = None,
    ) -> tuple[Release, bool]:
        """(the release, whether this call created it). Publishing identical bytes again under the
        same id is a no-op; different bytes under a taken id are refused."""
        release_id = release_id or default_release_id(manifest)
        if re.fullmatch(RELEASE_ID, release_id) is None:
            raise ReleaseError(f"release id {release_id!r} must match {RELEASE_ID}")
        size = artifact.stat().st_size
        if size != manifest.size or sha256_of(artifact) != manifest.sha256:
            raise ReleaseError(
                f"{artifact} does not match its manifest (size or sha256): rebuild, or pass the "
                "manifest written beside this artifact"
            )
        existing = self.release(release_id)
        if existing is not None:
            same = self._same_or_refuse(existing, manifest)
            self._sign_if_signer(release_id)  # e.g. a re-run after a key rotation
            return same, False
        artifact_key = self.blob_key(manifest.sha256, manifest.name)
        self.client.upload_file(
            str(artifact),
            self.bucket,
            artifact_key,
            ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": manifest.sha256}},
        )
        release = Release(
            release_id=release_id,
            manifest=manifest,
            artifact_key=artifact_key,
            published_at=now(),
            published_by=who or actor(),
        )
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.release_key(release_id),
                Body=orjson.dumps(release.model_dump(), option=orjson.OPT_INDENT_2),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if not _precondition_failed(error):
                raise
            winner = self.release(release_id)  # published concurrently by someone else
            if winner is None:
                raise
            same = self._same_or_refuse(winner, manifest)
            self._sign_if_signer(release_id)
            return same, False
        self._sign_if_signer(release_id)
        return release, True

    def _sign_if_signer(self, release_id: str) -> None:
        if self.signer is not None:
            self.sign_release(release_id)

    def sign_release(self, release_id: str) -> Envelope:
        """Sign ``release_id``'s record with the store's signer, keeping other keys' signatures
        of the same statement (so nodes pinning either key of a rotation accept it). A no-op when
        this key already signed it."""
        from .signing import RELEASE_TYPE, ReleaseStatement, format_time, sign, statement_bytes

        signer = self._require_signer("sign a release")
        found = self.release_bytes(release_id)
        if found is None:
            raise ReleaseError(f"no release {release_id!r} in s3://{self.bucket}/{self.prefix}")
        release, record = found
        statement = ReleaseStatement(
            release_id=release.release_id,
            record_sha256=hashlib.sha256(record).hexdigest(),
            sha256=release.manifest.sha256,
            size=release.manifest.size,
            mode=release.manifest.mode,
            signed_at=format_time(datetime.now(UTC)),
        )
        existing = self._release_signature(release_id)
        payload, keep, condition = statement_bytes(statement), [], {"IfNoneMatch": "*"}
        if existing is not None:
            envelope, etag = existing
            condition = {"IfMatch": etag}
            if self._same_release_statement(envelope, statement):
                payload, keep = envelope.payload_bytes(), list(envelope.signatures)
                if any(kept.keyid == _keyid(signer) for kept in keep):
                    return envelope
        envelope = sign(signer, RELEASE_TYPE, payload, keep)
        self._put_conditionally(
            self.release_signature_key(release_id), envelope.dumps(), condition, "signature"
        )
        return envelope

    @staticmethod
    def _same_release_statement(envelope: Envelope, statement: ReleaseStatement) -> bool:
        """The envelope states the same facts (whoever signed them, whenever)."""
        from .signing import RELEASE_TYPE, ReleaseStatement

        if envelope.payloadType != RELEASE_TYPE:
            return False
        try:
            stored = ReleaseStatement.model_validate(orjson.loads(envelope.payload_bytes()))
        except (ValueError, SignatureError):
            return False
        same: bool = stored.model_dump(exclude={"signed_at"}) == statement.model_dump(
            exclude={"signed_at"}
        )
        return same

    def _put_conditionally(
        self, key: str, body: bytes, condition: dict[str, str], what: str
    ) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                **condition,
            )
        except ClientError as error:
            if _precondition_failed(error):
                raise ReleaseError(
                    f"the {what} at {self._where(key)} changed while it was being written; "
                    "nothing was changed by this call: retry"
                ) from None
            raise

    def _require_signer(self, what: str) -> Signer:
        if self.signer is None:
            raise SignatureError(
                f"no signing key to {what} with: set WARDEN_SIGNING_KEY (PEM), "
                "WARDEN_SIGNING_KEY_FILE, or WARDEN_SIGNING_COMMAND with WARDEN_SIGNING_PUBLIC_KEY"
            )
        return self.signer

    def _same_or_refuse(self, existing: Release, manifest: Manifest) -> Release:
        if existing.manifest.sha256 == manifest.sha256:
            return existing
        raise ReleaseError(
            f"release {existing.release_id} already exists with different bytes "
            f"(sha256 {existing.manifest.sha256[:12]}..., yours {manifest.sha256[:12]}...): "
            "releases are immutable; publish under a new id (--release-id) or a new version"
        )

    def move(
        self,
        channel: str,
        to_release: str,
        *,
        action: str,
        why: str,
        who: str | None = None,
        allow_older: bool = True,
        repair: bool = False,
    ) -> Move:
        """Point ``channel`` at ``to_release`` if nobody moved it since we read it; then record the
        move. Refuses (instead of overwriting) when another move won the race, and, unless
        ``allow_older``, when ``to_release`` was published before the release the channel runs.
        With ``repair``, a malformed pointer is overwritten (still conditionally on its ETag)
        instead of refused; the history records the move as coming from nothing."""
        from botocore.exceptions import ClientError

        release = self.release(to_release)
        if release is None:
            raise ReleaseError(f"no release {to_release!r} in s3://{self.bucket}/{self.prefix}")
        if not why.strip():
            raise ReleaseError("say why (--why): the history is an audit trail")
        stored = self.pointer_or_broken(channel)
        broken_etag = None
        if stored is not None and stored[0] is None:
            if not repair:
                raise ReleaseError(
                    f"channel {channel!r} holds an unreadable pointer ({stored[2]}); "
                    "release ship repairs it"
                )
            broken_etag = stored[1]
        current = None if stored is None or stored[0] is None else (stored[0], stored[1])
        if current is not None and not allow_older:
            self._refuse_older(channel, current[0], release)
        who = who or actor()
        statement = None
        if self.signer is not None:
            previous = None if current is None else current[0]
            statement = self._channel_statement(channel, release.release_id, previous)
        pointer = Pointer(
            channel=channel,
            release_id=release.release_id,
            version=release.manifest.version,
            mode=release.manifest.mode,
            sha256=release.manifest.sha256,
            size=release.manifest.size,
            artifact_key=release.artifact_key,
            updated_at=now(),
            updated_by=who,
            statement=statement,
        )
        if broken_etag is not None:
            condition = {"IfMatch": broken_etag}
        elif current is None:
            condition = {"IfNoneMatch": "*"}
        else:
            condition = {"IfMatch": current[1]}
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.channel_key(channel),
                Body=orjson.dumps(pointer.model_dump(), option=orjson.OPT_INDENT_2),
                ContentType="application/json",
                **condition,
            )
        except ClientError as error:
            if _precondition_failed(error):
                raise ReleaseError(
                    f"channel {channel!r} moved while this {action} was being made; nothing was "
                    "changed by it: look at the history and retry"
                ) from None
            raise
        entry = Move(
            channel=channel,
            action=action,
            from_release=None if current is None else current[0].release_id,
            to_release=release.release_id,
            who=who,
            when=pointer.updated_at,
            why=why,
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.client.put_object(
            Bucket=self.bucket,
            Key=f"{self.history_prefix(channel)}{stamp}-{uuid.uuid4().hex[:8]}.json",
            Body=orjson.dumps(entry.model_dump(), option=orjson.OPT_INDENT_2),
            ContentType="application/json",
            IfNoneMatch="*",
        )
        return entry

    def _channel_statement(
        self, channel: str, release_id: str, previous: Pointer | None
    ) -> Envelope:
        """A signed statement that ``channel`` runs ``release_id``: only for a release this
        signer can verify (never sign a pointer to bytes nobody trusted signed), with a sequence
        larger than the current statement's (nodes refuse anything older than what they saw)."""
        from .signing import (
            CHANNEL_TYPE,
            DEFAULT_EXPIRES_DAYS,
            ChannelStatement,
            expiry,
            format_time,
            sign,
            signer_trust,
            statement_bytes,
        )
        from .trust import verify_release

        signer = self._require_signer("sign the channel")
        trust = signer_trust(signer, self.signer_trusts)
        found = self.release_bytes(release_id)
        if found is None:
            raise ReleaseError(f"no release {release_id!r} in s3://{self.bucket}/{self.prefix}")
        release, record = found
        when = datetime.now(UTC)
        sequence = int(when.timestamp() * 1_000_000)
        last = self._verified_sequence(previous, trust)
        statement = ChannelStatement(
            channel=channel,
            release_id=release_id,
            record_sha256=hashlib.sha256(record).hexdigest(),
            sha256=release.manifest.sha256,
            size=release.manifest.size,
            mode=release.manifest.mode,
            sequence=max(sequence, last + 1),
            signed_at=format_time(when),
            expires=expiry(self.statement_days or DEFAULT_EXPIRES_DAYS),
        )
        envelope = self.release_signature(release_id)
        try:
            verify_release(trust, statement, record, envelope)
        except SignatureError as error:
            raise SignatureError(
                f"not signing {channel} -> {release_id}: {error}; if these bytes are yours, sign "
                f"the release first (release sign --release {release_id})"
            ) from None
        return sign(signer, CHANNEL_TYPE, statement_bytes(statement))

    @staticmethod
    def _verified_sequence(pointer: Pointer | None, trust: TrustedKeys) -> int:
        """The sequence of the channel's current statement if it verifies, else 0."""
        from .signing import CHANNEL_TYPE, ChannelStatement, parse_statement

        if pointer is None or pointer.statement is None:
            return 0
        try:
            payload = trust.verify(pointer.statement, CHANNEL_TYPE, "the current statement")
            current: ChannelStatement = parse_statement(ChannelStatement, payload, "it")
        except SignatureError:
            return 0
        return current.sequence

    def refresh(self, channel: str, why: str, who: str | None = None) -> Move:
        """Re-sign what ``channel`` runs, with a new sequence and expiry: an idle channel's
        statement must not expire on the nodes (freeze protection makes them refuse it)."""
        current = self.channel(channel)
        if current is None:
            raise ReleaseError(f"channel {channel!r} does not exist: nothing to refresh")
        self._require_signer("refresh a channel")
        return self.move(channel, current.release_id, action="refresh", why=why, who=who)

    def _refuse_older(self, channel: str, current: Pointer, release: Release) -> None:
        """A re-run of an old CI job must not move prod backwards: going back is a rollback."""
        running = self.release(current.release_id)
        if running is not None and release.published_at < running.published_at:
            raise ReleaseError(
                f"{channel} runs {running.release_id}, published after {release.release_id}: "
                "not moving it back (use release rollback, or --allow-older)"
            )

    def promote(
        self,
        channel: str,
        release_id: str,
        why: str,
        who: str | None = None,
        *,
        allow_older: bool = True,
        repair: bool = False,
    ) -> Move:
        """Point ``channel`` at ``release_id``. With ``allow_older=False`` (what ``release ship``
        passes unless --allow-older) a release published before the one the channel runs is
        refused with a :class:`ReleaseError`; an explicit promote or a rollback may go back.
        ``repair`` (what ``release ship`` passes) overwrites a malformed pointer."""
        return self.move(
            channel,
            release_id,
            action="promote",
            why=why,
            who=who,
            allow_older=allow_older,
            repair=repair,
        )

    def rollback(
        self, channel: str, why: str, to_release: str | None = None, who: str | None = None
    ) -> Move:
        """Back to ``to_release``, or to what the channel ran before its current release."""
        current = self.channel(channel)
        if current is None:
            raise ReleaseError(f"channel {channel!r} does not exist: nothing to roll back")
        if to_release is None:
            arrivals = [m for m in self.history(channel) if m.to_release == current.release_id]
            previous = arrivals[-1].from_release if arrivals else None
            if previous is None:
                raise ReleaseError(
                    f"channel {channel!r} has no earlier release to go back to; name one (--to)"
                )
            to_release = previous
        if to_release == current.release_id:
            raise ReleaseError(f"channel {channel!r} already runs {to_release}")
        return self.move(channel, to_release, action="rollback", why=why, who=who)

    # transfer ----------------------------------------------------------------------------
    def presign(self, key: str, expires_s: int = 900) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s
        )
        return url

    def read_range(self, key: str, start: int) -> Any:
        """A streaming body of ``key`` from byte ``start`` on (to resume a partial download)."""
        extra = {"Range": f"bytes={start}-"} if start else {}
        return self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]

    @staticmethod
    def _check_channel(channel: str) -> None:
        if not valid_channel(channel):
            raise ReleaseError(
                f"channel name {channel!r}: lower case letters, digits, '.', '_', '-', at most "
                "one '/' (prod, staging, test/alice)"
            )


def _keyid(signer: Signer) -> str:
    from .dsse import keyid_of

    return keyid_of(signer.public_key)

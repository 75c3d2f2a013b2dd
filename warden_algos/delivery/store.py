"""Publish, promote, roll back, read: every operation on the release bucket, over boto3.

Immutability and atomicity come from S3 itself, not from a lock service: a release record is
written with ``If-None-Match: *`` (so two publishers of one id cannot both win), a channel pointer
with ``If-Match: <etag>`` of the pointer the mover read (so a concurrent move is refused, not lost),
and the artifact lives under its own checksum (so a losing publisher's upload can never replace
the winner's bytes). Each pointer move appends one history object; nothing is ever rewritten.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from warden_algos.executable.manifest import Manifest, sha256_of

from .records import RELEASE_ID, Move, Pointer, Release, now, valid_channel


class ReleaseError(RuntimeError):
    """A refused or impossible release operation; the message says what to do instead."""


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
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    # keys --------------------------------------------------------------------------------
    def release_key(self, release_id: str) -> str:
        return f"{self.prefix}/releases/{release_id}/release.json"

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
            return self._same_or_refuse(existing, manifest), False
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
            return self._same_or_refuse(winner, manifest), False
        return release, True

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

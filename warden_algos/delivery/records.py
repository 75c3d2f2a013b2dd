"""The three kinds of object a release bucket holds, as the JSON documents stored in it.

``<prefix>/releases/<id>/release.json``  a Release: immutable, written once, last (the commit point)
``<prefix>/blobs/sha256/<hex>/<name>``     the artifact's bytes, addressed by their checksum
``<prefix>/channels/<name>.json``          a Pointer: which release a channel runs, moved atomically
``<prefix>/history/<name>/<when>-<n>.json``  a Move: one object per pointer move, never rewritten

Every field a reader uses as a name is validated by the models themselves (sha256: 64 lower-case
hex digits; the artifact's name: a plain file name; size: 0 to 2 GiB; ids and channels: their
patterns), so a record a bucket writer crafted is refused before any of it names a file.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from warden_algos.executable.manifest import ArtifactSize, Manifest, Sha256

from .dsse import Envelope
from .errors import ReleaseError

__all__ = ["Move", "Pointer", "Release", "ReleaseError", "now", "valid_channel"]

RELEASE_ID = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,127}$"
CHANNEL = r"^[a-z0-9][a-z0-9._-]{0,62}(/[a-z0-9][a-z0-9._-]{0,62})?$"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def valid_channel(name: str) -> bool:
    """``prod``, ``staging``, ``test/<author>``: lower case, at most one slash."""
    return re.fullmatch(CHANNEL, name) is not None


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    release_id: str = Field(pattern=RELEASE_ID)
    manifest: Manifest
    artifact_key: str
    published_at: str
    published_by: str

    @property
    def sha256(self) -> str:
        return self.manifest.sha256


class Pointer(BaseModel):
    """A channel: enough to pull without reading the release (sha256 and size included)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(pattern=CHANNEL)
    release_id: str = Field(pattern=RELEASE_ID)
    version: str
    mode: str
    sha256: Sha256
    size: ArtifactSize
    artifact_key: str
    updated_at: str
    updated_by: str
    #: The release key's signed statement of this move (signing.py); None when unsigned.
    statement: Envelope | None = None


class Move(BaseModel):
    """One entry of a channel's audit history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(pattern=CHANNEL)
    action: Literal["promote", "rollback", "refresh"]
    from_release: str | None
    to_release: str
    who: str
    when: str
    why: str

"""The build manifest beside the artifact, and packing a onedir folder for transport."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from warden_algos.frozen import BuildStamp

#: The largest artifact a manifest may declare (2 GiB; a onedir tarball is about 90 MB): a node
#: never preallocates, appends or reads more than this for one release.
MAX_ARTIFACT_BYTES = 2 << 30

#: A sha256 as the manifest and the release records carry it: it names files and S3 keys, so
#: nothing but 64 lower-case hex digits is accepted.
SHA256 = r"^[0-9a-f]{64}$"


def plain_name(name: str) -> str:
    """A file name with no directory part: not empty, no ``/`` or ``\\``, not ``.``/``..``, no
    control characters (NUL, newline), at most 255 bytes."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(ord(char) < 32 or ord(char) == 127 for char in name)
        or len(name.encode()) > 255
    ):
        raise ValueError(f"{name[:80]!r} is not a plain file name")
    return name


PlainName = Annotated[str, AfterValidator(plain_name)]
Sha256 = Annotated[str, Field(pattern=SHA256)]
ArtifactSize = Annotated[int, Field(ge=0, le=MAX_ARTIFACT_BYTES, strict=True)]


class Manifest(BaseModel):
    """What a node needs to trust and run an artifact: what it is, where from, its checksum."""

    model_config = ConfigDict(frozen=True)

    name: PlainName
    version: str
    mode: str
    git_commit: str | None
    build_time: str
    python: str
    sha256: Sha256
    size: ArtifactSize
    build_seconds: float
    algorithms: list[dict[str, Any]]

    @classmethod
    def describe(
        cls,
        artifact: Path,
        *,
        mode: str,
        stamp: BuildStamp,
        algorithms: list[dict[str, Any]],
        python: str,
        build_seconds: float,
    ) -> Manifest:
        return cls(
            name=artifact.name,
            version=stamp.version,
            mode=mode,
            git_commit=stamp.git_commit,
            build_time=stamp.build_time,
            python=python,
            sha256=sha256_of(artifact),
            size=artifact.stat().st_size,
            build_seconds=build_seconds,
            algorithms=algorithms,
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: Manifest, artifact: Path) -> Path:
    path = artifact.with_name(artifact.name + ".manifest.json")
    path.write_bytes(orjson.dumps(manifest.model_dump(), option=orjson.OPT_INDENT_2) + b"\n")
    return path


def pack(folder: Path, tarball: Path) -> Path:
    """``folder`` as a gzip tarball whose single top-level entry is the folder's name, with
    modes kept (the executable and the Stan model must stay executable)."""
    with tarfile.open(tarball, "w:gz", compresslevel=6) as archive:
        archive.add(folder, arcname=folder.name)
    return tarball

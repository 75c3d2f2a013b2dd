"""The build manifest beside the artifact, and packing a onedir folder for transport."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from warden_algos.frozen import BuildStamp


class Manifest(BaseModel):
    """What a node needs to trust and run an artifact: what it is, where from, its checksum."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    mode: str
    git_commit: str | None
    build_time: str
    python: str
    sha256: str
    size: int
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

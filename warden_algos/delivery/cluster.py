"""``warden-algos test-deploy``: one command from a working tree to every test node running it.

The author names a cluster file and nothing else; the steps are the ones production takes, in
order, each refusing to go on if the previous one failed:

1. build the onedir executable (or take ``--artifact``),
2. verify it against every shared vector and example request,
3. publish it under an id that is unique to its bytes (a test build of an uncommitted tree must
   never collide with another),
4. point the author's channel (``test/<name>``) at it,
5. nudge every node to pull (they also poll), and wait until each one reports the new release.

The cluster file (TOML)::

    [release]                    # where releases live (or WARDEN_RELEASE_* variables)
    bucket = "warden-test-releases"
    [cluster]
    channel = "test/alice"       # default: test/<user>
    timeout_s = 120
    [[nodes]]
    name = "node-1"
    url = "http://10.0.0.5:8701" # the node agent's address (GET /status, POST /pull)
    token_file = "~/.config/warden/node-1.token"  # if the node runs with --token-file

A node's bearer token is read from its ``token_file`` (never written in the cluster file itself).
When a release key is configured (``WARDEN_SIGNING_KEY`` and the like, see ``signing.py``) the
release and the channel move are signed, so test nodes that pin a developer key accept them.
"""

from __future__ import annotations

import getpass
import re
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from warden_algos.executable.manifest import Manifest

from .config import ConfigError, ReleaseConfig
from .records import CHANNEL
from .store import ReleaseError, ReleaseStore, parse_record


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    token_file: Path | None = None

    def headers(self) -> dict[str, str]:
        """The bearer token the node requires, read when needed (never logged)."""
        if self.token_file is None:
            return {}
        path = self.token_file.expanduser()
        try:
            token = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"node {self.name}: cannot read its token_file {path}: {error}"
            ) from None
        if not token or any(char.isspace() for char in token):
            raise ConfigError(f"node {self.name}: {path} must hold one token (no spaces)")
        return {"Authorization": f"Bearer {token}"}


class Cluster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str = Field(pattern=CHANNEL)
    timeout_s: float = Field(default=120, gt=0)
    nodes: list[Node] = Field(min_length=1)

    @classmethod
    def load(cls, path: Path) -> tuple[Cluster, ReleaseConfig]:
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read {path}: {error}") from None
        table = dict(document.get("cluster", {}))
        user = re.sub(r"[^a-z0-9._-]", "-", getpass.getuser().lower())
        table.setdefault("channel", f"test/{user}")
        try:
            cluster = cls(**table, nodes=document.get("nodes", []))
        except ValidationError as error:
            raise ConfigError(f"{path}: {error}") from None
        if not cluster.channel.startswith("test/"):
            raise ConfigError(
                f"{path}: test-deploy only moves test/ channels, not {cluster.channel}"
            )
        return cluster, ReleaseConfig.load(path)


def unique_release_id(manifest: Manifest) -> str:
    """``<version>+<commit>.<sha256 prefix>``: unique per bytes, readable per commit."""
    commit = (manifest.git_commit or "nocommit")[:12]
    return f"{manifest.version}+{commit}.{manifest.sha256[:12]}"


def node_status(node: Node, timeout_s: float = 5) -> dict[str, Any]:
    request = urllib.request.Request(f"{node.url}/status", headers=node.headers())
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        status: dict[str, Any] = orjson.loads(response.read())
        return status


def nudge(node: Node, timeout_s: float = 120) -> None:
    request = urllib.request.Request(
        f"{node.url}/pull", data=b"", method="POST", headers=node.headers()
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


def run_test_deploy(
    cluster_file: Path,
    *,
    artifact: Path | None = None,
    verify_build: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Returns {"release_id", "channel", "nodes": {name: release_id or error}}; raises
    ReleaseError when a step fails or a node does not take the release in time."""
    from .signing import signer_from_environment

    cluster, config = Cluster.load(cluster_file)
    for node in cluster.nodes:
        node.headers()  # an unreadable token file fails now, before anything is published
    store = ReleaseStore(
        config.client(), config.bucket, config.prefix, signer=signer_from_environment()
    )
    with tempfile.TemporaryDirectory(prefix="warden-test-deploy-") as scratch:
        if artifact is None:
            from warden_algos.executable.freeze import freeze

            log("building the onedir executable ...")
            built = freeze("onedir", Path(scratch) / "dist", Path(scratch) / "work")
            artifact, executable = built.artifact, built.executable
        else:
            executable = _unpacked(artifact, Path(scratch) / "unpacked")
        manifest_path = artifact.with_name(artifact.name + ".manifest.json")
        try:
            raw = manifest_path.read_bytes()
        except OSError as error:
            raise ReleaseError(f"cannot read the manifest {manifest_path}: {error}") from None
        manifest = parse_record(Manifest, raw, str(manifest_path))
        if verify_build:
            from warden_algos.executable.verify import verify

            log(f"verifying {executable} ...")
            outcome = verify(executable)
            if not outcome.ok:
                raise ReleaseError(
                    f"verification failed ({len(outcome.mismatches)} mismatches: "
                    f"{', '.join(outcome.mismatches[:5])}); nothing was published"
                )
            log(f"verified {outcome.checked} answers")
        release, created = store.publish(artifact, manifest, unique_release_id(manifest))
    log(f"{'published' if created else 'already published'} {release.release_id}")
    pointer = store.channel(cluster.channel)
    if pointer is None or pointer.release_id != release.release_id:
        store.promote(cluster.channel, release.release_id, why="test-deploy")
    log(f"{cluster.channel} -> {release.release_id}; waiting for {len(cluster.nodes)} nodes")
    reached: dict[str, str] = {}
    deadline = time.monotonic() + cluster.timeout_s
    for node in cluster.nodes:
        try:
            nudge(node, timeout_s=cluster.timeout_s)
        except OSError as error:  # the node polls too; keep waiting for it below
            log(f"{node.name}: nudge failed ({error}); waiting for its own poll")
    while len(reached) < len(cluster.nodes) and time.monotonic() < deadline:
        for node in cluster.nodes:
            if node.name in reached:
                continue
            try:
                status = node_status(node)
            except OSError:
                continue
            if status.get("release_id") == release.release_id:
                reached[node.name] = release.release_id
                log(f"{node.name}: running {release.release_id}")
        time.sleep(0.2)
    missing = [node.name for node in cluster.nodes if node.name not in reached]
    if missing:
        raise ReleaseError(
            f"{', '.join(missing)} did not report {release.release_id} within "
            f"{cluster.timeout_s:g} s (the channel does point to it)"
        )
    return {"release_id": release.release_id, "channel": cluster.channel, "nodes": reached}


def _unpacked(artifact: Path, into: Path) -> Path:
    """The executable inside a onedir tarball (or the onefile itself), to verify before publish."""
    from .pull import safe_extract  # the pull's rules: links, devices, '..' refused

    if not artifact.name.endswith(".tar.gz"):
        return artifact
    into.mkdir(parents=True)
    safe_extract(artifact, into, str(artifact))
    return into / "warden-algos" / "warden-algos"

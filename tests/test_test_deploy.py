"""``warden-algos test-deploy`` end to end: real executable, real S3 server, real node agents.

Two node agents (``warden-algos node``, each with two serve workers of the PyInstaller executable)
run release A of an author's test channel while client threads keep sending requests to both.
test-deploy then verifies, publishes and promotes release B and waits for the nodes: both must
report B, and not one request may fail during the swap. One node pins a release key and requires
a bearer token: test-deploy signs with the developer's key and sends the token from the cluster
file's ``token_file``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.delivery.records import Release
from warden_algos.delivery.store import ReleaseStore
from warden_algos.executable.manifest import Manifest, pack, sha256_of

from .conftest import BUCKET, Built, detect_request, dumps
from .s3_server import CREDENTIALS, free_port
from .signing_keys import new_key, signed_store, trusted_keys_file
from .test_deploy import corrupt_blob, make_store

CHANNEL = "test/alice"


def repacked(built: Built, folder: Path, marker: str) -> tuple[Path, Manifest]:
    """The built onedir with one extra file: a second release with the same program and new
    bytes, without a second 75-second build."""
    with tarfile.open(built["tarball"]) as tar:
        tar.extractall(folder, filter="tar")
    (folder / "warden-algos" / "_internal" / "DEPLOY_MARKER").write_text(marker)
    tarball = pack(folder / "warden-algos", folder / f"warden-algos-{marker}-onedir.tar.gz")
    original = Manifest.model_validate(orjson.loads(built["manifest"].read_bytes()))
    manifest = original.model_copy(
        update={"name": tarball.name, "sha256": sha256_of(tarball), "size": tarball.stat().st_size}
    )
    tarball.with_name(tarball.name + ".manifest.json").write_bytes(
        orjson.dumps(manifest.model_dump())
    )
    return tarball, manifest


def running_release(store: ReleaseStore, built: Built) -> Release:
    """The session's build, published and promoted on the test channel: what nodes start on."""
    manifest = Manifest.model_validate(orjson.loads(built["manifest"].read_bytes()))
    release, _ = store.publish(built["tarball"], manifest, release_id="0.1.0+a")
    store.promote(CHANNEL, release.release_id, why="the running version")
    return release


class NodeProcess:
    def __init__(self, endpoint: str, prefix: str, dest: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers: dict[str, str] = {}
        if "--token-file" in options:
            token = Path(options[options.index("--token-file") + 1]).read_text().strip()
            self.headers = {"Authorization": f"Bearer {token}"}
        self.stderr = (dest.parent / f"{dest.name}.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "warden_algos",
                "node",
                "--channel",
                CHANNEL,
                "--dest",
                str(dest),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--workers",
                "2",
                "--poll-s",
                "30",
                "--bucket",
                BUCKET,
                "--prefix",
                prefix,
                "--endpoint-url",
                endpoint,
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            env={**os.environ, **CREDENTIALS},
        )

    def wait_ready(self, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "node agent exited"
            try:
                status_request = urllib.request.Request(f"{self.url}/status", headers=self.headers)
                with urllib.request.urlopen(status_request, timeout=2) as response:
                    status: dict[str, Any] = orjson.loads(response.read())
                    return status
            except OSError:
                time.sleep(0.2)
        raise AssertionError("node agent did not come up")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.stderr.close()


@pytest.fixture
def nodes(s3_endpoint: str, prefix: str, tmp_path: Path) -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.stop()


class Traffic:
    """Client threads sending ksigma requests to every node until stopped."""

    def __init__(
        self, urls: list[str], per_node: int = 2, headers: dict[str, dict[str, str]] | None = None
    ) -> None:
        self.headers = headers or {}
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(url, seed), daemon=True)
            for url in urls
            for seed in range(per_node)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, url: str, seed: int) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            request = detect_request(request_id=f"{url[-4:]}-{seed}-{n}", seed=seed)
            try:
                call = urllib.request.Request(
                    f"{url}/invoke",
                    data=dumps(request),
                    method="POST",
                    headers=self.headers.get(url, {}),
                )
                with urllib.request.urlopen(call, timeout=60) as response:
                    answer = orjson.loads(response.read())
                good = (
                    answer.get("status") == "ok" and answer["request_id"] == request["request_id"]
                )
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(str(answer)[:200])
            except Exception as error:  # every kind of failure counts
                with self.lock:
                    self.failures.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)


def test_test_deploy_swaps_every_node_without_failing_a_request(
    built: Built,
    s3_endpoint: str,
    prefix: str,
    tmp_path: Path,
    nodes: list[NodeProcess],
) -> None:
    pem, key = new_key()
    store = signed_store(s3_endpoint, prefix, key)
    release_a = running_release(store, built)
    token_file = tmp_path / "node-0.token"
    token_file.write_text("s3cr3t-node-token\n")
    trusted = trusted_keys_file(tmp_path / "trusted.json", key)
    pinning = ("--token-file", str(token_file), "--trusted-keys", str(trusted))
    nodes.append(NodeProcess(s3_endpoint, prefix, tmp_path / "node-0", *pinning))
    nodes.append(NodeProcess(s3_endpoint, prefix, tmp_path / "node-1"))
    for node in nodes:
        assert node.wait_ready()["release_id"] == release_a.release_id
    assert node_status_of(nodes[0])["signatures_checked"] is True

    artifact_b, manifest_b = repacked(built, tmp_path / "b", "b")
    cluster = tmp_path / "cluster.toml"
    node_lines = (
        f'[[nodes]]\nname = "node-0"\nurl = "{nodes[0].url}"\ntoken_file = "{token_file}"\n'
        f'[[nodes]]\nname = "node-1"\nurl = "{nodes[1].url}"\n'
    )
    cluster.write_text(
        f'[release]\nbucket = "{BUCKET}"\nprefix = "{prefix}"\nendpoint_url = "{s3_endpoint}"\n'
        f'[cluster]\nchannel = "{CHANNEL}"\ntimeout_s = 180\n' + node_lines
    )
    traffic = Traffic([node.url for node in nodes], headers={nodes[0].url: nodes[0].headers})
    try:
        time.sleep(1.0)  # requests are flowing before the deploy starts
        before = traffic.ok
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "warden_algos",
                "test-deploy",
                "--cluster",
                str(cluster),
                "--artifact",
                str(artifact_b),
                "--json",
            ],
            capture_output=True,
            # verify's reference registry = the binary's; the developer's key signs
            env={**built["env"], **CREDENTIALS, "WARDEN_SIGNING_KEY": pem.decode()},
            timeout=900,
            check=False,
        )
        time.sleep(1.0)  # and keep flowing after it
    finally:
        traffic.stop()
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    result = orjson.loads(done.stdout)
    release_b = result["release_id"]
    assert release_b.endswith(manifest_b.sha256[:12]) and release_b != release_a.release_id
    assert result["nodes"] == {"node-0": release_b, "node-1": release_b}
    assert b"verified" in done.stderr
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.ok > before > 0
    for node in nodes:
        status = node_status_of(node)
        assert status["release_id"] == release_b and status["generation"] == 2
        assert status["failed"] == 0
    history = store.history(CHANNEL)
    assert [m.to_release for m in history] == [release_a.release_id, release_b]


def node_status_of(node: NodeProcess) -> dict[str, Any]:
    with urllib.request.urlopen(
        urllib.request.Request(f"{node.url}/status", headers=node.headers), timeout=5
    ) as response:
        status: dict[str, Any] = orjson.loads(response.read())
        return status


def test_a_node_keeps_serving_when_a_pull_fails(
    built: Built,
    s3_endpoint: str,
    prefix: str,
    tmp_path: Path,
    nodes: list[NodeProcess],
) -> None:
    """A corrupted release on the channel: the nudge says so, the node keeps its release."""
    store = make_store(s3_endpoint, prefix)
    release_a = running_release(store, built)
    artifact_c, manifest_c = repacked(built, tmp_path / "c", "c")
    release_c, _ = store.publish(artifact_c, manifest_c, release_id="0.1.0+c")
    corrupt_blob(store, release_c.release_id)
    node = NodeProcess(s3_endpoint, prefix, tmp_path / "node")
    nodes.append(node)
    assert node.wait_ready()["release_id"] == release_a.release_id
    store.promote(CHANNEL, release_c.release_id, why="a bad upload")
    nudge = urllib.request.Request(f"{node.url}/pull", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(nudge, timeout=300)
    assert refused.value.code == 502
    assert b"sha256" in refused.value.read()
    status = node_status_of(node)
    assert status["release_id"] == release_a.release_id and status["generation"] == 1
    call = urllib.request.Request(f"{node.url}/invoke", data=dumps(detect_request()), method="POST")
    with urllib.request.urlopen(call, timeout=60) as response:
        assert orjson.loads(response.read())["status"] == "ok"

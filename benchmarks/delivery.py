"""What delivery costs a node, with the real onedir artifact and a real S3 server on loopback.

    python benchmarks/delivery.py     # uses dist/onedir/*.tar.gz (run warden-algos build first)

Starts moto_server, publishes the artifact (and a second release: the same folder with one file
added, so the bytes differ), then times on a fresh node folder: a cold pull (download, sha256,
unpack, smoke test, switch), the no-op pull when current, a pull of the next release, a local
rollback, and a pull back to a release that is still unpacked (switch only). Loopback hides the
network, so the figures are the node's own work; add transfer time for a real bucket.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.s3_server import CREDENTIALS, moto_server  # noqa: E402
from warden_algos.delivery.config import ReleaseConfig  # noqa: E402
from warden_algos.delivery.pull import pull, rollback_local  # noqa: E402
from warden_algos.delivery.store import ReleaseStore  # noqa: E402
from warden_algos.executable.manifest import Manifest, pack, sha256_of  # noqa: E402

BUCKET = "warden-bench"


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def unpack(tarball: Path, into: Path) -> None:
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="tar")


def second_release(tarball: Path, manifest: Manifest, work: Path) -> tuple[Path, Manifest]:
    with tarfile.open(tarball) as tar:
        tar.extractall(work, filter="tar")
    (work / "warden-algos" / "_internal" / "BENCH_MARKER").write_text("b")
    repacked = pack(work / "warden-algos", work / "warden-algos-b-onedir.tar.gz")
    return repacked, manifest.model_copy(
        update={
            "name": repacked.name,
            "sha256": sha256_of(repacked),
            "size": repacked.stat().st_size,
        }
    )


def main() -> int:
    tarball = next((ROOT / "dist" / "onedir").glob("warden-algos-*-onedir.tar.gz"), None)
    if tarball is None:
        raise SystemExit("no dist/onedir/*.tar.gz: run `warden-algos build` first")
    manifest = Manifest.model_validate(
        orjson.loads(tarball.with_name(tarball.name + ".manifest.json").read_bytes())
    )
    os.environ.update(CREDENTIALS)
    rows: dict[str, float] = {}
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        config = ReleaseConfig(bucket=BUCKET, prefix="bench", endpoint_url=endpoint)
        client = config.client()
        client.create_bucket(Bucket=BUCKET)
        store = ReleaseStore(client, BUCKET, "bench")
        tarball_b, manifest_b = second_release(tarball, manifest, work / "b")
        rows["publish (upload + record)"], _ = timed(
            lambda: store.publish(tarball, manifest, release_id="bench+a")
        )
        store.publish(tarball_b, manifest_b, release_id="bench+b")
        rows["sha256 of the artifact alone"], _ = timed(lambda: sha256_of(tarball))
        rows["unpack alone (tarfile)"], _ = timed(lambda: unpack(tarball, work / "unpack"))
        node = work / "node"
        store.promote("prod", "bench+a", why="bench")
        rows["cold pull (download, verify, unpack, smoke test, switch)"], _ = timed(
            lambda: pull(store, "prod", node)
        )
        rows["pull when current (no-op)"], _ = timed(lambda: pull(store, "prod", node))
        store.promote("prod", "bench+b", why="bench")
        rows["pull of the next release"], _ = timed(lambda: pull(store, "prod", node))
        rows["local rollback (pull --rollback)"], _ = timed(lambda: rollback_local(node))
        rows["pull back to a release still unpacked"], _ = timed(lambda: pull(store, "prod", node))
    table = Table(
        title=f"delivery of {tarball.name} ({manifest.size / 1e6:.1f} MB), moto on loopback",
        title_justify="left",
    )
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for step, seconds in rows.items():
        table.add_row(step, f"{seconds:.3f}")
    Console(width=120).print(table)
    out = ROOT / "benchmarks" / "results" / "delivery.json"
    out.write_bytes(
        orjson.dumps(
            {"artifact_mb": manifest.size / 1e6, "seconds": rows}, option=orjson.OPT_INDENT_2
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

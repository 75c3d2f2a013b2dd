"""Shared fixtures: run the real CLI in subprocesses, and install test plugins for real.

Plugins are installed the way pip leaves them: a ``*.dist-info`` folder with ``entry_points.txt``
on a path the child interpreter searches (``PYTHONPATH``), so discovery goes through
``importlib.metadata`` exactly as in production.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import orjson
import pytest

from .plugins.environments import (
    PLUGIN_MODULE,
    TEST_PLUGINS,
    env_with_path,
    install_broken_registry,
    install_example_plugin,
    install_fake_distribution,
    install_fragile_plugin,
    install_test_plugins,
)
from .plugins.warden_fragile_algos import BREAK_IMPORT_ENV
from .s3_server import CREDENTIALS, moto_server

__all__ = ["PLUGIN_MODULE", "TEST_PLUGINS", "env_with_path", "install_fake_distribution"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return install_test_plugins(tmp_path_factory.mktemp("plugin-site"))


@pytest.fixture(scope="session")
def vector_environments(
    plugin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, str] | None]:
    """The installed-plugin environments a shared vector can ask for (its case.json says which)."""
    return {
        "default": None,
        "test-plugins": plugin_env,
        "broken-registry": install_broken_registry(tmp_path_factory.mktemp("broken-registry")),
    }


def cli(
    *args: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "warden_algos", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def build_executable(
    out: Path, env: dict[str, str], *flags: str
) -> subprocess.CompletedProcess[str]:
    """``warden-algos build`` into ``out/dist`` (work in ``out/work``), in ``env``'s registry."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "warden_algos",
            "build",
            *flags,
            "--dist",
            str(out / "dist"),
            "--work",
            str(out / "work"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )


def detect_request(
    algorithm: str = "ksigma",
    n: int = 200,
    params: dict[str, Any] | None = None,
    request_id: str | None = "r1",
    seed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    values = 10 + rng.normal(0, 1, n)
    if n > 150:
        values[150] += 25
    request: dict[str, Any] = {
        "interface": "detect",
        "algorithm": algorithm,
        "params": params or {},
        "detect": {
            "dimensions": ["host=a"],
            "timestamps": (1_700_000_000 + 60 * np.arange(n)).tolist(),
            "values": values.tolist(),
        },
        **extra,
    }
    if request_id is not None:
        request["request_id"] = request_id
    return request


def rca_request(k: int = 2, request_id: str | None = "rca-1", **extra: Any) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    n = 100
    times = (1_700_000_000 + 60 * np.arange(n)).tolist()
    bump = np.zeros(n)
    bump[60:70] = 1
    cause = 5 + rng.normal(0, 0.5, n) + 10 * bump
    noise = 5 + rng.normal(0, 0.5, n)
    moi = 100 + 3 * cause + rng.normal(0, 0.5, n)
    request: dict[str, Any] = {
        "interface": "rca",
        "algorithm": "correlation",
        "params": {"window": 8},
        "rca": {
            "metric_of_interest": {
                "dimensions": {"svc": "api"},
                "times": times,
                "values": moi.tolist(),
            },
            "related_metrics": [
                {"dimensions": {"dep": "noise"}, "times": times, "values": noise.tolist()},
                {"dimensions": {"dep": "cause"}, "times": times, "values": cause.tolist()},
            ],
            "k": k,
            "anomalies": [times[62], times[66]],
        },
        **extra,
    }
    if request_id is not None:
        request["request_id"] = request_id
    return request


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def read_frames(data: bytes) -> list[bytes]:
    """Split a serve-mode stdout into frame bodies; fails on any stray byte."""
    frames = []
    offset = 0
    while offset < len(data):
        assert offset + 4 <= len(data), f"stray bytes at the end of stdout: {data[offset:]!r}"
        (size,) = struct.unpack(">I", data[offset : offset + 4])
        body = data[offset + 4 : offset + 4 + size]
        assert len(body) == size, "truncated response frame"
        frames.append(body)
        offset += 4 + size
    return frames


class ServeProcess:
    """A live ``serve`` process to talk to frame by frame."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        command: Sequence[str] = (sys.executable, "-m", "warden_algos"),
    ) -> None:
        """``command`` is the program before ``serve``: the unfrozen CLI, or a built binary."""
        # stderr goes to a file: an undrained pipe would fill up and stall the server.
        self.stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the fixture
        self.proc = subprocess.Popen(
            [*command, "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            env=env,
        )

    def send(self, body: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(frame(body))
        self.proc.stdin.flush()

    def receive_raw(self) -> bytes:
        """One response frame's body, exactly as written."""
        assert self.proc.stdout is not None
        header = self.proc.stdout.read(4)
        assert len(header) == 4, f"no response frame; stderr: {self.stderr_tail()}"
        (size,) = struct.unpack(">I", header)
        body = self.proc.stdout.read(size)
        assert len(body) == size
        return body

    def receive(self) -> dict[str, Any]:
        response: dict[str, Any] = orjson.loads(self.receive_raw())
        return response

    def ask(self, request: dict[str, Any] | bytes) -> dict[str, Any]:
        self.send(request if isinstance(request, bytes) else dumps(request))
        return self.receive()

    def close(self, timeout: float = 30) -> int:
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.proc.wait(timeout=timeout)

    def stderr_text(self) -> str:
        self.stderr_file.seek(0)
        return self.stderr_file.read().decode(errors="replace")

    def stderr_tail(self) -> str:
        return self.stderr_text()[-2000:]


@pytest.fixture
def serve_factory() -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        server = ServeProcess(*args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait()
        for stream in (server.proc.stdin, server.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        server.stderr_file.close()


class Built(TypedDict):
    """What the session's one build left behind, and the environment it was built in."""

    executable: Path
    tarball: Path
    manifest: Path
    verify_line: Path  # the build's "verified N answers ...: M mismatches" line
    skipped: list[str]  # the vectors the build's verification listed as skipped
    env: dict[str, str]  # the build's environment: the unfrozen reference runs in it too
    checkout_changes: tuple[str, str]  # checkout_status() before and after the build


def checkout_status() -> str:
    """What a build could add to the checkout: untracked files that are not ignored (every one
    listed), and the state of the source folder ``build/``. Edits a developer makes elsewhere
    while the suite runs do not count; .ci/run checks the whole ``git status`` at the end."""
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    build_folder = subprocess.run(
        ["git", "status", "--porcelain", "--", "build"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return untracked + build_folder


def plugin_build_env(root: Path) -> dict[str, str]:
    """Test plugins, the fragile plugin and the tukey example, each in its own site folder on
    PYTHONPATH: the build freezes whatever this environment's registry sees."""
    sites = [root / "test-plugins", root / "fragile", root / "tukey"]
    install_test_plugins(sites[0])
    install_fragile_plugin(sites[1])
    install_example_plugin(sites[2])
    env = env_with_path(*sites)
    env.pop(BREAK_IMPORT_ENV, None)  # the build must be able to import every plugin
    return env


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("binary")
    env = plugin_build_env(out / "sites")
    before = checkout_status()
    done = build_executable(out, env, "--verify")
    after = checkout_status()
    assert done.returncode == 0, done.stderr[-4000:]
    onedir = out / "dist" / "onedir"
    tarball = next(onedir.glob("warden-algos-*-onedir.tar.gz"))
    verify_line = out / "verify.txt"
    lines = done.stderr.splitlines()
    verify_line.write_text("\n".join(line for line in lines if line.startswith("verified ")))
    return {
        "executable": onedir / "warden-algos" / "warden-algos",
        "tarball": tarball,
        "manifest": tarball.with_name(tarball.name + ".manifest.json"),
        "verify_line": verify_line,
        "skipped": [line.removeprefix("skipped ") for line in lines if line.startswith("skipped ")],
        "env": env,
        "checkout_changes": (before, after),
    }


#: The bucket every delivery test uses, on the session's moto_server; tests differ by prefix.
BUCKET = "warden-releases"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    with moto_server() as endpoint:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def mlflow_booting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real MLflow tracking server on loopback, one for the whole session, started without
    waiting for it (``mlflow_tracking`` waits): a test asking for this one runs while it boots."""
    from .mlflow_server import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_tracking(mlflow_booting: Any) -> str:
    """The URL of the session's MLflow tracking server, once it answers."""
    url: str = mlflow_booting.url()
    return url


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"  # every test its own corner of the bucket


#: What the stand-in artifacts of the delivery tests say they hold.
ALGORITHMS = [{"name": "ksigma", "interface": "detect", "source": "built-in"}]


def fake_manifest(tarball: Path, git_commit: str | None = "random") -> Any:
    """The manifest a build would write for the stand-in ``tarball`` (a random commit unless
    one, or None, is given)."""
    from warden_algos.executable.manifest import Manifest, sha256_of

    return Manifest(
        name=tarball.name,
        version="0.1.0",
        mode="onedir",
        git_commit=uuid.uuid4().hex + "00000000" if git_commit == "random" else git_commit,
        build_time="2026-11-23T00:00:00+00:00",
        python="3.11.7",
        sha256=sha256_of(tarball),
        size=tarball.stat().st_size,
        build_seconds=1.0,
        algorithms=ALGORITHMS,
    )


#: Session fixtures that build something slow, and the xdist group of the tests using them (directly
#: or through another fixture): the executable (``built``), the Java harness it feeds
#: (``classpath``) and the onefile build (``onefile``). pytest-xdist (``-n 2 --dist loadgroup``, see
#: pyproject.toml) runs each group on one worker, so each is built once per run; every other test
#: goes to whichever worker is free.
SHARED_BUILDS: dict[str, str] = {
    "built": "executable",
    "classpath": "executable",
    "onefile": "onefile",
}


def shared_build_group(fixturenames: Sequence[str]) -> str | None:
    """The group of a test using one of :data:`SHARED_BUILDS`, else None."""
    return next((SHARED_BUILDS[name] for name in fixturenames if name in SHARED_BUILDS), None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the groups before pytest-xdist's own hook reads the marks (without ``tryfirst`` it
    runs first and sees none: both workers built the executable)."""
    for item in items:
        group = shared_build_group(getattr(item, "fixturenames", ()))
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker with ``--dist loadgroup``, refuse to run if a grouped test's id lacks its
    group suffix: xdist would then schedule the group on both workers without a word (pytest 9.2
    did that to xdist 3.8), building the executable twice and adding minutes to every run."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    ungrouped = [
        item.nodeid
        for item in session.items
        if item.get_closest_marker("xdist_group") is not None and "@" not in item.nodeid
    ]
    if ungrouped:
        raise pytest.UsageError(
            f"pytest-xdist ignored the xdist_group of {len(ungrouped)} tests "
            f"(e.g. {ungrouped[0]}): check the pytest / pytest-xdist pair pinned in pyproject.toml"
        )

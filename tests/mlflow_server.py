"""A real MLflow tracking server on loopback: ``mlflow server`` with a SQLite store and its
artifact proxy (``--artifacts-destination``), as a team would run one, in a session of its own
so that it and its worker stop together.

Starting one takes 10-20 s on 2 busy vCPUs (it migrates a new database, then loads its app), so
:class:`MlflowServer` starts it without waiting, and :meth:`MlflowServer.url` waits: a test that
needs no server can run while it boots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

from .s3_server import free_port

START_TIMEOUT_S = 120


class MlflowServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.log = (root / "server.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")), "server",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # no background job runner (it starts worker processes the tests never need)
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            start_new_session=True,
        )  # fmt: skip
        self.started = time.monotonic()
        self.ready = False

    def url(self) -> str:
        """The server's URL, once its ``/health`` answers."""
        url = f"http://127.0.0.1:{self.port}"
        while not self.ready:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=1).close()
                self.ready = True
            except OSError:
                late = time.monotonic() - self.started > START_TIMEOUT_S
                if self.process.poll() is not None or late:
                    tail = (self.root / "server.log").read_bytes()[-2000:]
                    raise RuntimeError(f"mlflow server did not start:\n{tail.decode()}") from None
                time.sleep(0.2)
        return url

    def stop(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self.log.close()

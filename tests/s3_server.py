"""A real S3-compatible server on loopback (``moto_server``), and a TCP proxy that breaks it.

The delivery code talks to S3 over HTTP with boto3 exactly as in production; only the endpoint
URL differs. The proxy sits between them to make the network misbehave on purpose: cut a
connection after some bytes, or trickle bytes slowly, so interrupted and concurrent downloads are
real ones.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def moto_server() -> Iterator[str]:
    """``moto_server`` on a free loopback port; yields its endpoint URL."""
    port = free_port()
    executable = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(executable), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


class FaultyProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; misbehaves on the connections it is told to.

    ``cut_after``: close the first ``cut_connections`` responses that grow past that many bytes
    (S3 servers may close every connection after one response, so counting connections would
    cut the small JSON reads instead of the download);
    ``bytes_per_s``: throttle every response (0 = full speed).
    """

    def __init__(
        self,
        upstream: str,
        *,
        cut_after: int | None = None,
        cut_connections: int = 1,
        bytes_per_s: int = 0,
    ) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.cut_after, self.cuts_left = cut_after, cut_connections
        self.bytes_per_s = bytes_per_s
        self.connections = 0
        self.cut = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
        self._pipe(server, client, self.cut_after)

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts_left <= 0:
                return False
            self.cuts_left -= 1
            self.cut += 1
            return True

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                chunk = source.recv(16384)
                if not chunk:
                    break
                if limit is not None and sent + len(chunk) >= limit and self._take_cut():
                    sink.sendall(chunk[: max(0, limit - sent)])
                    break
                if limit is not None and sent + len(chunk) >= limit:
                    limit = None  # no cuts left: this response goes through whole
                sink.sendall(chunk)
                sent += len(chunk)
                if self.bytes_per_s:
                    time.sleep(len(chunk) / self.bytes_per_s)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

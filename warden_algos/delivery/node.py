"""A node agent: serve-mode workers of ``DEST/current``, fed over loopback HTTP, swapped in place.

What a platform node does with delivery, small enough to run two or three of in a test: it pulls
its channel (on a timer, and when nudged with ``POST /pull``), and when a new release is installed
it starts workers from it and swaps them in: requests that are already running finish on the old
workers, which retire as they come back; new requests go to the new ones. No request fails
because of a deploy. ``GET /status`` says which release the node runs.

    POST /invoke   a request (any wire format the workers speak; JSON by default) -> the response
    POST /pull     pull now; answers the status after it
    GET  /status   {"release_id", "sha256", "workers", "served", "failed", "generation"}
"""

from __future__ import annotations

import queue
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from .pull import PullResult, executable_in, installed, pull
from .store import ReleaseError, ReleaseStore


class Worker:
    """One ``serve`` process of one release."""

    def __init__(self, executable: Path, generation: int, format_name: str) -> None:
        self.generation = generation
        self.process = subprocess.Popen(
            [str(executable), "serve", "--format", format_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def ask(self, body: bytes) -> bytes:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(struct.pack(">I", len(body)) + body)
        self.process.stdin.flush()
        header = self.process.stdout.read(4)
        if len(header) != 4:
            raise OSError("worker closed its output")
        (size,) = struct.unpack(">I", header)
        return self.process.stdout.read(size)

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class NodeAgent:
    def __init__(
        self,
        store: ReleaseStore,
        channel: str,
        dest: Path,
        *,
        workers: int = 2,
        format_name: str = "json",
        poll_s: float = 5.0,
    ) -> None:
        self.store, self.channel, self.dest = store, channel, dest
        self.size, self.format_name, self.poll_s = workers, format_name, poll_s
        self.generation = 0
        self.idle: queue.Queue[Worker] = queue.Queue()
        self.lock = threading.Lock()  # guards generation/idle swaps and the counters
        self.pull_lock = threading.Lock()
        self.served = 0
        self.failed = 0
        self.stopping = threading.Event()

    # lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.pull_now()
        threading.Thread(target=self._watch, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return

    def _watch(self) -> None:
        while not self.stopping.wait(self.poll_s):
            try:
                self.pull_now()
            except ReleaseError as error:
                print(f"node: pull failed, still serving: {error}", file=sys.stderr)

    def pull_now(self) -> PullResult:
        with self.pull_lock:
            result = pull(self.store, self.channel, self.dest)
            if result.status == "installed" or self.generation == 0:
                self._swap_in()
            return result

    def _swap_in(self) -> None:
        """Start the new release's workers first, then switch; old ones retire as they return."""
        release = installed(self.dest)
        if release is None:
            raise ReleaseError(f"nothing installed in {self.dest}: is {self.channel} promoted?")

        executable = executable_in((self.dest / "current").resolve())
        generation = self.generation + 1
        fresh = [Worker(executable, generation, self.format_name) for _ in range(self.size)]
        with self.lock:
            self.generation = generation
            retired: list[Worker] = []
            while True:
                try:
                    retired.append(self.idle.get_nowait())
                except queue.Empty:
                    break
            for worker in fresh:
                self.idle.put(worker)
        for worker in retired:
            worker.close()
        print(f"node: serving {release.release_id} (generation {generation})", file=sys.stderr)

    # requests ----------------------------------------------------------------------------
    def invoke(self, body: bytes, timeout_s: float = 60) -> bytes:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                worker = self.idle.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError("no free worker") from None
                continue
            if worker.generation != self.generation:  # taken just before a swap: retire it
                worker.close()
                continue
            try:
                answer = worker.ask(body)
            except OSError:
                worker.close()
                self._replace(worker)
                raise
            self._give_back(worker)
            with self.lock:
                self.served += 1
            return answer

    def _give_back(self, worker: Worker) -> None:
        with self.lock:
            current = worker.generation == self.generation
            if current:
                self.idle.put(worker)
        if not current:
            worker.close()

    def _replace(self, dead: Worker) -> None:
        with self.lock:
            if dead.generation != self.generation:
                return
            executable = executable_in((self.dest / "current").resolve())
            self.idle.put(Worker(executable, self.generation, self.format_name))

    def status(self) -> dict[str, Any]:
        release = installed(self.dest)
        with self.lock:
            return {
                "channel": self.channel,
                "release_id": None if release is None else release.release_id,
                "sha256": None if release is None else release.sha256,
                "generation": self.generation,
                "workers": self.size,
                "served": self.served,
                "failed": self.failed,
            }

    # HTTP --------------------------------------------------------------------------------
    def serve_http(self, host: str, port: int) -> ThreadingHTTPServer:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/status":
                    self._reply(200, orjson.dumps(agent.status()))
                else:
                    self._reply(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path == "/invoke":
                    try:
                        self._reply(200, agent.invoke(body))
                    except (OSError, TimeoutError) as error:
                        with agent.lock:
                            agent.failed += 1
                        self._reply(503, orjson.dumps({"error": str(error)}))
                elif self.path == "/pull":
                    try:
                        result = agent.pull_now()
                        self._reply(200, orjson.dumps({**agent.status(), "pull": result.status}))
                    except ReleaseError as error:
                        self._reply(502, orjson.dumps({"error": str(error)}))
                else:
                    self._reply(404, b'{"error": "not found"}')

            def _reply(self, code: int, payload: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # stdout/stderr stay quiet; /status carries the counters

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server

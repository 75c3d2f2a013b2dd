"""The node agent under faults (issue 15): cut-short worker replies, hostile HTTP input, time bounds
and a channel-polling thread that must outlive any exception.

Everything is real: releases in a real S3 server (moto_server on loopback), pulled and installed by
the node, real HTTP over loopback, real worker processes. The released "executable" is a small
script that answers ``version --json`` itself and, for ``serve``, becomes the unfrozen
``python -m warden_algos serve`` (with the misbehaving test plugins installed), or, when
``RELAY_ENV`` is set in the node's environment, relays frames to one and cuts a reply short on
request: what a worker that dies while writing its answer looks like from the node.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.delivery import node as node_module
from warden_algos.delivery import pull as delivery_pull
from warden_algos.delivery.node import NodeAgent
from warden_algos.delivery.store import ReleaseStore
from warden_algos.executable.manifest import Manifest

from .conftest import BUCKET, detect_request, dumps, fake_manifest
from .s3_server import CREDENTIALS, free_port
from .test_deploy import ALGORITHMS, make_store

CHANNEL = "prod"
RELAY_ENV = "WARDEN_NODE_TEST_RELAY"
CUT_MARKER = b"cut-this-reply-short"
STALL_MARKER = b"never-answer-this"

PROGRAM = """#!{python}
# {tag}
import json, os, struct, subprocess, sys, time

if sys.argv[1:2] == ["version"]:
    print(json.dumps({{"tag": {tag!r}, "algorithms": {algorithms!r}}}))
    sys.exit(0)
with open({argv_log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
env = {{**os.environ, "PYTHONPATH": {pythonpath!r}}}
command = [sys.executable, "-m", "warden_algos", *sys.argv[1:]]
if not os.environ.get({relay_env!r}):
    os.execve(sys.executable, command, env)
child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
source, sink = sys.stdin.buffer, sys.stdout.buffer
while len(header := source.read(4)) == 4:
    body = source.read(struct.unpack(">I", header)[0])
    if {stall!r} in body:  # alive, silent, for ever
        while True:
            time.sleep(60)
    if {marker!r} in body:  # a header that promises 1000 bytes, 13 of them, and death
        sink.write(struct.pack(">I", 1000) + b'{{"status": "o')
        sink.flush()
        os._exit(70)
    child.stdin.write(header + body)
    child.stdin.flush()
    answer = child.stdout.read(4)
    if len(answer) != 4:
        os._exit(71)
    sink.write(answer + child.stdout.read(struct.unpack(">I", answer)[0]))
    sink.flush()
child.stdin.close()
sys.exit(child.wait())
"""


def stand_in_artifact(folder: Path, tag: str, plugin_env: dict[str, str]) -> tuple[Path, Manifest]:
    folder.mkdir(parents=True, exist_ok=True)
    program = PROGRAM.format(
        python=sys.executable,
        tag=tag,
        algorithms=ALGORITHMS,
        argv_log=str(folder.parent / "worker-argv.log"),
        pythonpath=plugin_env["PYTHONPATH"],
        relay_env=RELAY_ENV,
        marker=CUT_MARKER,
        stall=STALL_MARKER,
    ).encode()
    tarball = folder / f"warden-algos-{tag}-onedir.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("warden-algos/warden-algos")
        info.size, info.mode = len(program), 0o755
        tar.addfile(info, io.BytesIO(program))
    manifest = fake_manifest(tarball)
    return tarball, manifest


def publish(store: ReleaseStore, tmp_path: Path, tag: str, plugin_env: dict[str, str]) -> str:
    artifact, manifest = stand_in_artifact(tmp_path / "art" / tag, tag, plugin_env)
    release, _ = store.publish(artifact, manifest, release_id=f"0.1.0+{tag}")
    return release.release_id


def worker_argv(tmp_path: Path, started: int) -> list[list[str]]:
    """The arguments every worker started with, oldest first, once ``started`` have logged them."""
    log = tmp_path / "art" / "worker-argv.log"

    def lines() -> list[str]:
        found = log.read_text().splitlines() if log.exists() else []
        return found if len(found) >= started else []

    return [json.loads(line) for line in wait_for(lines)]


def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str | None = "default",
    timeout: float = 60,
) -> tuple[int, dict[str, Any], float]:
    """(status, JSON body, seconds); ``headers`` go out as given (Content-Length included: set it
    there to lie about the body); ``host=None`` sends no Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", f"127.0.0.1:{port}" if host == "default" else host)
        sent = dict(headers or {})
        if body is not None and "Content-Length" not in sent:
            sent["Content-Length"] = str(len(body))
        for name, value in sent.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    return response.status, orjson.loads(payload), time.monotonic() - started


class Node:
    """A NodeAgent behind its HTTP server: in this process, or (``agent=None``) a
    ``warden-algos node`` process listening on ``port``. Workers are real processes."""

    def __init__(self, agent: NodeAgent | None, port: int = 0) -> None:
        self.agent, self.port = agent, port
        if agent is not None:
            agent.start()
            self.server = agent.serve_http("127.0.0.1", 0)
            self.port = self.server.server_port
            threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def request(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any], float]:
        return http_request(self.port, *args, **kwargs)

    def invoke(self, request: dict[str, Any] | bytes, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        body = request if isinstance(request, bytes) else dumps(request)
        status, answer, _ = self.request("POST", "/invoke", body, **kwargs)
        return status, answer

    def status(self) -> dict[str, Any]:
        code, answer, _ = self.request("GET", "/status")
        assert code == 200
        return answer

    def pool_pids(self) -> list[int]:
        assert self.agent is not None
        return [worker.process.pid for worker in list(self.agent.idle.queue)]

    def stop(self) -> None:
        assert self.agent is not None
        self.server.shutdown()
        self.server.server_close()
        self.agent.stop()


@pytest.fixture
def store(s3_endpoint: str, prefix: str) -> ReleaseStore:
    return make_store(s3_endpoint, prefix)


@pytest.fixture
def start_node(
    store: ReleaseStore, tmp_path: Path, plugin_env: dict[str, str]
) -> Iterator[Callable[..., Node]]:
    """Publish and promote a stand-in release, then start a node on it (options as NodeAgent's)."""
    started: list[Node] = []

    def start(**options: Any) -> Node:
        release_id = publish(store, tmp_path, f"a{len(started)}", plugin_env)
        store.promote(CHANNEL, release_id, why="the running version")
        options.setdefault("workers", 1)
        node = Node(NodeAgent(store, CHANNEL, tmp_path / f"node{len(started)}", **options))
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def wait_for(condition: Callable[[], Any], timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# 1. cut-short replies ----------------------------------------------------------------------


def test_a_reply_cut_short_is_a_502_and_the_worker_is_never_reused(
    start_node: Callable[..., Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RELAY_ENV, "1")
    node = start_node(workers=1)
    assert node.invoke(detect_request())[1]["status"] == "ok"
    [before] = node.pool_pids()
    status, answer = node.invoke(detect_request(request_id=CUT_MARKER.decode()))
    assert status == 502 and answer["code"] == "WORKER_FAILED"
    assert "13 of 1000 bytes" in answer["error"]
    [after] = node.pool_pids()
    assert after != before
    for _ in range(3):  # the replacement answers, again and again
        status, answer = node.invoke(detect_request())
        assert status == 200 and answer["status"] == "ok"
    counters = node.status()
    assert (counters["served"], counters["failed"], counters["replaced"]) == (4, 1, 1)
    assert "WORKER_FAILED" in counters["last_error"] and counters["last_error_at"]


def test_a_worker_that_dies_mid_request_is_a_502_and_the_next_request_succeeds(
    start_node: Callable[..., Node],
) -> None:
    node = start_node(workers=1)
    [before] = node.pool_pids()
    crash = detect_request("test_crash", params={"mode": "hard_exit"})
    status, answer = node.invoke(crash)
    assert status == 502 and answer["code"] == "WORKER_FAILED"
    assert "got 0 of 4 bytes" in answer["error"] and "exit status 70" in answer["error"]
    assert node.pool_pids() != [before]
    status, answer = node.invoke(detect_request())
    assert status == 200 and answer["status"] == "ok"


# 2. HTTP input -------------------------------------------------------------------------------


def test_http_input_is_checked_before_it_is_read(start_node: Callable[..., Node]) -> None:
    node = start_node(max_body_bytes=64 * 1024, allowed_hosts=["warden.internal"])
    port = node.port

    def refused(expected: int, code: str, *args: Any, **kwargs: Any) -> None:
        status, answer, seconds = node.request(*args, timeout=10, **kwargs)
        assert (status, answer["code"]) == (expected, code), answer
        assert isinstance(answer["error"], str) and answer["error"]
        assert seconds < 5  # answered at once, not after waiting for a body that never comes

    request = dumps(detect_request())
    refused(411, "LENGTH_REQUIRED", "POST", "/invoke")
    refused(411, "LENGTH_REQUIRED", "POST", "/invoke", headers={"Transfer-Encoding": "chunked"})
    for bad in ("-5", "abc", "1e3", "0x10", "+12", "", "9" * 200):
        refused(400, "BAD_LENGTH", "POST", "/invoke", headers={"Content-Length": bad})
    # a body larger than the cap is refused without reading it (none is even sent)
    for huge in (str(64 * 1024 + 1), str(10**15), "9" * 30):
        refused(413, "TOO_LARGE", "POST", "/invoke", headers={"Content-Length": huge})
    # host allow-list: the listen address, localhost forms, --allow-host; nothing else
    refused(421, "MISDIRECTED", "GET", "/status", host=f"attacker.example:{port}")
    refused(421, "MISDIRECTED", "POST", "/invoke", request, host="attacker.example")
    refused(400, "BAD_HOST", "GET", "/status", host=None)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "warden.internal"):
        assert node.request("GET", "/status", host=host)[0] == 200
    # the node still serves a real request, over a raw socket too
    assert node.invoke(request)[1]["status"] == "ok"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"POST /invoke HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n")
        reply = b""
        while chunk := raw.recv(65536):  # the node closes its side once it has answered
            reply += chunk
    assert reply.startswith(b"HTTP/1.0 413") and b'"code":"TOO_LARGE"' in reply


def test_a_bearer_token_guards_every_endpoint(start_node: Callable[..., Node]) -> None:
    node = start_node(token="s3cr3t-t0ken")
    request = dumps(detect_request())
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cr3t-t0ken"}):
        for method, path, body in (("GET", "/status", None), ("POST", "/invoke", request)):
            status, answer, _ = node.request(method, path, body, headers=headers)
            assert (status, answer["code"]) == (401, "UNAUTHORIZED")
    good = {"Authorization": "Bearer s3cr3t-t0ken"}
    assert node.request("GET", "/status", headers=good)[0] == 200
    status, answer = node.invoke(request, headers=good)
    assert status == 200 and answer["status"] == "ok"


def test_the_node_command_takes_the_hardening_options(
    s3_endpoint: str, prefix: str, store: ReleaseStore, tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    """``warden-algos node`` end to end: --token-file, --allow-host, --timeout-s, --max-body-mb."""
    store.promote(CHANNEL, publish(store, tmp_path, "cli", plugin_env), why="start")
    (tmp_path / "token").write_text("t0ken-from-a-file\n")
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "warden_algos", "node", "--channel", CHANNEL),
            *("--dest", str(tmp_path / "node"), "--listen", f"127.0.0.1:{port}"),
            *("--workers", "1", "--timeout-s", "7.5", "--max-body-mb", "0.1"),
            *("--token-file", str(tmp_path / "token"), "--allow-host", "warden.internal"),
            *("--bucket", BUCKET, "--prefix", prefix, "--endpoint-url", s3_endpoint),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    try:
        node = Node(None, port)
        good = {"Authorization": "Bearer t0ken-from-a-file"}

        def ready() -> bool:
            assert process.poll() is None, "node agent exited"
            try:
                return node.request("GET", "/status", headers=good, timeout=2)[0] == 200
            except OSError:
                return False

        wait_for(ready, timeout_s=120)
        assert node.request("GET", "/status")[0] == 401
        assert node.request("GET", "/status", headers=good, host="warden.internal")[0] == 200
        status, answer = node.invoke(b"x" * 200_000, headers=good)
        assert (status, answer["code"]) == (413, "TOO_LARGE")
        status, answer = node.invoke(detect_request(), headers=good)
        assert status == 200 and answer["status"] == "ok"
        assert worker_argv(tmp_path, 1)[-1] == ["serve", "--format", "json", "--timeout-s", "7.5"]
    finally:
        process.terminate()
        process.wait(timeout=30)


# 3. time bounds ------------------------------------------------------------------------------


def test_workers_get_a_default_timeout_and_none_must_be_explicit(
    start_node: Callable[..., Node], tmp_path: Path
) -> None:
    node = start_node()
    assert node.status()["timeout_s"] == 60
    assert worker_argv(tmp_path, 1)[-1] == ["serve", "--format", "json", "--timeout-s", "60"]
    node.stop()
    start_node(timeout_s=None)
    assert worker_argv(tmp_path, 2)[-1] == ["serve", "--format", "json", "--timeout-s", "none"]


def test_a_slow_request_times_out_and_a_busy_node_answers_503_at_once(
    start_node: Callable[..., Node],
) -> None:
    node = start_node(workers=1, timeout_s=3, queue_wait_s=0.5)
    slow: dict[str, Any] = {}

    def ask_slow() -> None:
        started = time.monotonic()
        slow["answer"] = node.invoke(detect_request("test_sleep", params={"seconds": 30}))
        slow["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=ask_slow)
    thread.start()
    wait_for(lambda: not node.pool_pids())  # the only worker is busy
    status, answer, seconds = node.request("POST", "/invoke", dumps(detect_request()))
    assert (status, answer["code"]) == (503, "NO_FREE_WORKER") and seconds < 3
    thread.join(timeout=60)
    status, answer = slow["answer"]
    assert status == 200 and answer["status"] == "error" and answer["error"]["code"] == "TIMEOUT"
    assert slow["seconds"] < 20
    status, answer = node.invoke(detect_request())
    assert status == 200 and answer["status"] == "ok"
    assert node.status()["failed"] == 1


def test_a_worker_silent_past_the_bound_is_a_504_and_is_replaced(
    start_node: Callable[..., Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that neither answers nor dies (its own TIMEOUT never comes): the node's bound
    (timeout + grace + slack, shortened here) ends it."""
    monkeypatch.setenv(RELAY_ENV, "1")
    monkeypatch.setattr(node_module, "WORKER_HARD_GRACE_S", 0.0)
    monkeypatch.setattr(node_module, "REPLY_SLACK_S", 0.5)
    node = start_node(workers=1, timeout_s=1)
    [before] = node.pool_pids()
    status, answer, seconds = node.request(
        "POST", "/invoke", dumps(detect_request(request_id=STALL_MARKER.decode()))
    )
    assert (status, answer["code"]) == (504, "WORKER_TIMEOUT") and seconds < 10
    assert node.pool_pids() != [before]
    status, answer = node.invoke(detect_request())
    assert status == 200 and answer["status"] == "ok"


# 4. the polling thread -----------------------------------------------------------------------


def test_the_polling_thread_survives_any_exception_and_reports_it(
    start_node: Callable[..., Node],
    store: ReleaseStore,
    tmp_path: Path,
    plugin_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = start_node(poll_s=0.2)
    first = node.status()
    assert first["last_error"] is None and first["polling"] and first["generation"] == 1
    key = store.channel_key(CHANNEL)
    good_pointer = store.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    # a malformed channel pointer (not even JSON)
    store.client.put_object(Bucket=BUCKET, Key=key, Body=b"{not json")
    broken = wait_for(lambda: (s := node.status())["pull_failures"] >= 1 and s)
    assert broken["last_error"].startswith("pull: ") and broken["last_error_at"]
    assert broken["polling"] and broken["release_id"] == first["release_id"]
    store.client.put_object(Bucket=BUCKET, Key=key, Body=good_pointer)
    wait_for(lambda: node.status()["pull_failures"] == 0)

    # anything at all: here a RuntimeError out of the pull itself (whatever pull and the store
    # turn into ReleaseErrors today, the thread must not depend on it)
    real_pull = delivery_pull.pull
    faulty = threading.Event()
    faulty.set()

    def pull(*args: Any, **kwargs: Any) -> Any:
        if faulty.is_set():
            raise RuntimeError("injected fault")
        return real_pull(*args, **kwargs)

    monkeypatch.setattr(node_module, "pull", pull)
    faulted = wait_for(lambda: "injected fault" in ((s := node.status())["last_error"]) and s)
    assert faulted["last_error"] == "pull: RuntimeError: injected fault"
    assert faulted["last_error_at"] >= broken["last_error_at"]
    wait_for(lambda: node.status()["pull_failures"] >= 2)
    assert node.status()["polling"]
    faulty.clear()

    # still polling: a new release is picked up, and the node serves it
    second = publish(store, tmp_path, "b", plugin_env)
    store.promote(CHANNEL, second, why="next")
    after = wait_for(
        lambda: (s := node.status())["release_id"] == second and s["pull_failures"] == 0 and s,
        timeout_s=60,
    )
    assert after["generation"] == 2 and after["polling"]
    assert after["last_error"] == faulted["last_error"]  # the last error stays on record
    status, answer = node.invoke(detect_request())
    assert status == 200 and answer["status"] == "ok"


def test_a_nudge_that_fails_on_anything_answers_json(
    start_node: Callable[..., Node], store: ReleaseStore
) -> None:
    node = start_node()
    store.client.put_object(Bucket=BUCKET, Key=store.channel_key(CHANNEL), Body=b"\xff garbage")
    status, answer, _ = node.request("POST", "/pull", b"")
    assert (status, answer["code"]) == (502, "PULL_FAILED")
    assert node.status()["last_error"].startswith("pull: ")
    assert node.invoke(detect_request())[1]["status"] == "ok"

"""``warden-algos http``: the real command on a loopback port, real serve workers, a real client.

One executor process serves the whole module (started once: its workers' imports are the slow
part), with short bounds so the timeouts are quick to reach: ``--timeout-s 1``, the pool's own
kill after 2 s, a 1 MiB body limit, 1 s for a body and for a request head, 0.5 s of queue wait.
Its answers are compared with ``warden-algos run``'s for the same bodies, byte for byte.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from warden_algos.contract_files import contract_files
from warden_algos.httpexec.cli import TOKEN_ENV, read_token
from warden_algos.httpexec.openapi import OPENAPI_FILE
from warden_algos.httpexec.statuses import CODE_STATUS, REASON_HEADER
from warden_algos.models_folder import ModelsFolder
from warden_algos.registry import Registry

from .conftest import ROOT, cli, detect_request, dumps, rca_request
from .s3_server import free_port

TOKEN = "test-token-3f9a"
MAX_BODY = 1 << 20


class Executor:
    """The running command and a client for it."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, env: dict[str, str], models: Path
    ) -> None:
        self.process, self.port, self.env, self.models = process, port, env, models

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = TOKEN,
        headers: dict[str, str] | None = None,
        timeout: float = 20,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def post(self, path: str, envelope: dict[str, Any] | bytes, **kwargs: Any) -> tuple[int, Any]:
        body = envelope if isinstance(envelope, bytes) else dumps(envelope)
        status, _, payload = self.request("POST", path, body, **kwargs)
        return status, orjson.loads(payload)

    def ready(self) -> dict[str, Any]:
        status, _, payload = self.request("GET", "/readyz", token=None)
        answer: dict[str, Any] = orjson.loads(payload)
        return answer if status == 200 else {}


@pytest.fixture(scope="module")
def executor(
    plugin_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Executor]:
    folder = tmp_path_factory.mktemp("http")
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    command = [
        sys.executable, "-m", "warden_algos", "http", "--port", str(port), "--workers", "2",
        "--token-file", str(token_file), "--timeout-s", "1", "--hard-grace-s", "0.5",
        "--reply-slack-s", "0.5", "--queue-wait-s", "0.5", "--max-body-mb", "1",
        "--body-timeout-s", "1", "--header-timeout-s", "1", "--models-dir", str(folder / "models"),
    ]  # fmt: skip
    with (folder / "stderr").open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=plugin_env)
    running = Executor(process, port, plugin_env, folder / "models")
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (folder / "stderr").read_text()[-3000:]
            try:
                if running.ready():
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the executor did not become ready"
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        assert process.stdout.read() == b""  # stdout is not this command's
        log = (folder / "stderr").read_text()
        assert TOKEN not in log  # never logged
        assert '"logger":"warden_algos.http"' in log  # the project's JSON lines


def run_answer(body: bytes, env: dict[str, str], *args: str) -> bytes:
    done = cli("run", *args, stdin=body, env=env)
    return done.stdout.removesuffix(b"\n")  # run ends its one answer with a newline


# answers ------------------------------------------------------------------------------------


def test_detect_and_rca_answer_what_run_answers(executor: Executor) -> None:
    for path, envelope in (
        ("/v1/detect", detect_request(n=1000)),
        ("/v1/rca", rca_request()),
    ):
        body = dumps(envelope)
        status, headers, payload = executor.request("POST", path, body)
        assert status == 200 and headers["content-type"] == "application/json"
        assert payload == run_answer(body, executor.env)
        assert orjson.loads(payload)["status"] == "ok"


def test_fit_then_detect_with_the_stored_model_the_workers_read(executor: Executor) -> None:
    """--models-dir reaches the workers: a detect request names its series' model."""
    fit = (ROOT / "serialization/vectors/ksigma_fit/request.json").read_bytes()
    status, _, payload = executor.request("POST", "/v1/fit", fit)
    assert status == 200 and payload == run_answer(fit, executor.env)
    envelope = orjson.loads(fit)
    ksigma = Registry.discover().load("ksigma")(**envelope["params"])
    ModelsFolder(executor.models).install(  # as models sync does: keyed by the full params
        "ksigma",
        ksigma.get_params(),
        "host=web-1",
        base64.b64decode(orjson.loads(payload)["fit"]["state"]),
    )
    last = envelope["fit"]["timestamps"][-1]
    detect = {
        "interface": "detect",
        "algorithm": "ksigma",
        "params": envelope["params"],
        "detect": {
            "timestamps": [last + 60, last + 120],
            "values": [100.0, 900.0],
            "model": "host=web-1",
        },
    }
    status, _, payload = executor.request("POST", "/v1/detect", dumps(detect))
    assert status == 200, payload
    assert payload == run_answer(dumps(detect), executor.env, "--models-dir", str(executor.models))
    detect["detect"]["model"] = "host=nowhere"  # type: ignore[index]
    status, answer = executor.post("/v1/detect", detect)
    assert (status, answer["error"]["code"]) == (404, "STATE_NOT_FOUND")


@pytest.mark.parametrize(
    ("envelope", "code"),
    [
        ({"interface": "detect", "detect": {}}, "INVALID_INPUT"),
        (detect_request(algorithm="no_such_algorithm"), "UNKNOWN_ALGORITHM"),
        (detect_request(params={"no_such_parameter": 1}), "INVALID_PARAMS"),
        (detect_request(algorithm="test_crash"), "ALGORITHM_FAILED"),
        (detect_request(algorithm="test_sleep", params={"seconds": 3}), "TIMEOUT"),
    ],
)
def test_each_error_code_has_its_status_and_the_envelope_body(
    executor: Executor, envelope: dict[str, Any], code: str
) -> None:
    body = dumps(envelope)
    status, headers, payload = executor.request("POST", "/v1/detect", body)
    answer = orjson.loads(payload)
    assert answer["status"] == "error" and answer["error"]["code"] == code
    assert status == CODE_STATUS[code]  # type: ignore[index]
    assert REASON_HEADER.lower() not in {name.lower() for name in headers}  # the worker's answer
    if code != "TIMEOUT":  # run has no deadline by default
        assert payload == run_answer(body, executor.env)


def test_the_route_must_match_the_interface(executor: Executor) -> None:
    status, answer = executor.post("/v1/rca", detect_request())
    assert status == 400 and answer["error"]["code"] == "INVALID_INPUT"
    assert answer["error"]["field"] == "interface" and answer["request_id"] == "r1"
    status, _, payload = executor.request("POST", "/v1/nothing", b"{}")
    assert status == 404 and orjson.loads(payload)["status"] == "error"
    status, headers, _ = executor.request("GET", "/v1/detect")
    assert status == 405 and headers["allow"] == "POST"


def test_the_token_guards_every_route_but_health(executor: Executor) -> None:
    for token in (None, "wrong", TOKEN + "x", ""):
        status, headers, payload = executor.request("GET", "/v1/algorithms", token=token)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert orjson.loads(payload)["error"]["code"] == "INVALID_INPUT"
        assert headers[REASON_HEADER.lower()] == "UNAUTHORIZED"
        status, _, _ = executor.request("POST", "/v1/detect", dumps(detect_request()), token=token)
        assert status == 401
    status, _, payload = executor.request("GET", "/v1/algorithms")
    assert status == 200
    rows = {row["name"]: row for row in orjson.loads(payload)["algorithms"]}
    assert rows["ksigma"]["interface"] == "detect" and rows["ksigma"]["params_schema"]
    for path in ("/healthz", "/readyz"):
        assert executor.request("GET", path, token=None)[0] == 200


def test_the_served_openapi_is_the_committed_file(executor: Executor) -> None:
    status, _, payload = executor.request("GET", "/openapi.json")
    assert status == 200
    committed = (ROOT / "interfaces" / OPENAPI_FILE).read_bytes()
    assert payload == committed == contract_files()[OPENAPI_FILE]
    document = orjson.loads(payload)
    assert {"/v1/detect", "/v1/rca", "/v1/fit", "/healthz"} <= set(document["paths"])


# bounds ----------------------------------------------------------------------------------------


def good_request_meanwhile(executor: Executor) -> tuple[threading.Thread, list[int]]:
    statuses: list[int] = []

    def ask() -> None:
        for _ in range(3):
            statuses.append(executor.post("/v1/detect", detect_request(n=1000))[0])

    thread = threading.Thread(target=ask)
    thread.start()
    return thread, statuses


def test_an_oversized_body_is_a_413_by_length_and_by_chunks(executor: Executor) -> None:
    thread, statuses = good_request_meanwhile(executor)
    # by its Content-Length, before a byte of it is read (none is sent)
    with socket.create_connection(("127.0.0.1", executor.port), timeout=10) as raw:
        raw.sendall(
            f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode()
        )
        reply = read_all(raw)
    assert reply.startswith(b"HTTP/1.1 413 ") and b'"code":"INVALID_INPUT"' in reply
    # chunked: refused once the chunks go past the limit
    with socket.create_connection(("127.0.0.1", executor.port), timeout=10) as raw:
        raw.sendall(
            f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * (64 * 1024)
        for _ in range(MAX_BODY // len(chunk) + 1):
            raw.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        raw.sendall(b"0\r\n\r\n")
        reply = read_all(raw)
    assert reply.startswith(b"HTTP/1.1 413 ") and b"chunked" in reply
    thread.join()
    assert statuses == [200, 200, 200]


def read_all(raw: socket.socket) -> bytes:
    chunks = []
    while chunk := raw.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_slowloris_client_is_cut_off_while_others_are_answered(executor: Executor) -> None:
    started = time.monotonic()
    thread, statuses = good_request_meanwhile(executor)
    # the head arrives, the body never does: 408 after --body-timeout-s
    body_stall = socket.create_connection(("127.0.0.1", executor.port), timeout=10)
    body_stall.sendall(
        f"POST /v1/detect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        'Content-Length: 1000\r\n\r\n{"interface"'.encode()
    )
    # the head itself trickles, a byte every 0.2 s: closed after --header-timeout-s
    head_stall = socket.create_connection(("127.0.0.1", executor.port), timeout=10)
    trickled = 0
    try:
        for byte in b"POST /v1/detect HTTP/1.1\r\nHost: x\r\nX-Slow: yes":
            head_stall.sendall(bytes([byte]))
            trickled += 1
            time.sleep(0.2)
    except OSError:  # closed under it
        pass
    with contextlib.suppress(ConnectionResetError):  # closed with a byte unread: cut off too
        assert head_stall.recv(1000) == b""
    assert trickled < 15
    head_stall.close()
    with body_stall:
        reply = read_all(body_stall)
    assert reply.startswith(b"HTTP/1.1 408 ") and b"BODY_TIMEOUT" in reply
    thread.join()
    assert statuses == [200, 200, 200] and time.monotonic() - started < 10


# the pool ---------------------------------------------------------------------------------------


def test_a_worker_dying_mid_request_is_a_502_and_is_replaced(executor: Executor) -> None:
    before = executor.ready()["replaced"]
    status, headers, payload = executor.request(
        "POST",
        "/v1/detect",
        dumps(detect_request(algorithm="test_crash", params={"mode": "hard_exit"})),
    )
    assert (status, headers[REASON_HEADER.lower()]) == (502, "WORKER_FAILED")
    assert orjson.loads(payload)["error"]["code"] == "INTERNAL"
    assert executor.ready()["replaced"] == before + 1
    assert executor.post("/v1/detect", detect_request())[0] == 200


def test_workers_killed_from_outside_are_replaced_and_the_next_request_succeeds(
    executor: Executor,
) -> None:
    pids = executor.ready()["pids"]
    assert len(pids) == 2
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    status, answer = executor.post("/v1/detect", detect_request())
    assert status == 200 and answer["status"] == "ok"
    assert not set(executor.ready()["pids"]) & set(pids)


def test_a_silent_worker_is_a_504_and_is_replaced(executor: Executor) -> None:
    """Stopped (SIGSTOP), a worker neither answers nor dies: the pool's bound (timeout 1 s +
    grace 0.5 + slack 0.5) ends it."""
    pids = executor.ready()["pids"]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        status, headers, payload = executor.request("POST", "/v1/detect", dumps(detect_request()))
        assert (status, headers[REASON_HEADER.lower()]) == (504, "WORKER_TIMEOUT")
        assert orjson.loads(payload)["error"]["code"] == "TIMEOUT"
        assert 1.5 < time.monotonic() - started < 8
    finally:
        for pid in pids:
            with_gone_ok(pid, signal.SIGCONT)
    assert executor.post("/v1/detect", detect_request())[0] == 200


def with_gone_ok(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # killed and replaced meanwhile
        os.kill(pid, signal_number)


def test_no_free_worker_within_the_queue_wait_is_a_503(executor: Executor) -> None:
    slow = dumps(detect_request(algorithm="test_sleep", params={"seconds": 0.7}))
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(executor.post("/v1/detect", slow)[0]))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 0.6
    while executor.ready()["idle"] and time.monotonic() < deadline:  # both workers lent out
        time.sleep(0.01)
    status, headers, _ = executor.request("POST", "/v1/detect", dumps(detect_request()))
    for thread in threads:
        thread.join()
    assert (status, headers[REASON_HEADER.lower()]) == (503, "NO_FREE_WORKER")
    assert statuses == [200, 200]


def test_the_help_names_the_routes() -> None:
    done = cli("http", "--help")
    assert done.returncode == 0 and b"/v1/detect" in done.stdout and b"--token-file" in done.stdout
    assert Path(ROOT / "README.md").read_text().count("## The HTTP executor") == 1


def test_the_token_comes_from_the_file_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert read_token(None) is None  # no token: every route open
    monkeypatch.setenv(TOKEN_ENV, " from-env \n")
    assert read_token(None) == b"from-env"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert read_token(token_file) == b"from-file"  # the file wins
    token_file.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_token(token_file)

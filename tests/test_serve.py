"""Serve mode through a real process: ordering, isolation of failures, timeouts, framing."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from typing import Any

import orjson

from warden_algos.wire import encode_frame

from .conftest import EXAMPLES, cli, detect_request, dumps, frame, rca_request, read_frames


def mixed_requests(count: int) -> list[tuple[bytes, str | None]]:
    """(request body, expected error code or None for ok), cycling through good and bad kinds."""
    kinds: list[tuple[Any, str | None]] = [
        (lambda i: detect_request(n=120, seed=i, request_id=f"ok-{i}"), None),
        (lambda i: b"{not json", "INVALID_INPUT"),
        (lambda i: detect_request(algorithm="missing", request_id=f"u-{i}"), "UNKNOWN_ALGORITHM"),
        (lambda i: rca_request(request_id=f"rca-{i}"), None),
        (lambda i: detect_request(params={"k": -1}, request_id=f"p-{i}"), "INVALID_PARAMS"),
        (lambda i: detect_request("test_crash", request_id=f"c-{i}"), "ALGORITHM_FAILED"),
        (lambda i: detect_request("test_print", n=30, request_id=f"print-{i}"), None),
    ]
    out = []
    for i in range(count):
        make, code = kinds[i % len(kinds)]
        body = make(i)
        out.append((body if isinstance(body, bytes) else dumps(body), code))
    return out


def test_serve_answers_1000_mixed_requests_in_order(plugin_env: dict[str, str]) -> None:
    requests = mixed_requests(1000)
    done = cli(
        "serve", stdin=b"".join(frame(body) for body, _ in requests), env=plugin_env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    responses = [orjson.loads(body) for body in read_frames(done.stdout)]
    assert len(responses) == 1000
    for (body, code), response in zip(requests, responses, strict=True):
        if body.startswith(b"{not"):
            assert response["request_id"] is None
        else:
            assert response["request_id"] == orjson.loads(body)["request_id"]
        if code is None:
            assert response["status"] == "ok", response
        else:
            assert response["error"]["code"] == code, response


def test_serve_keeps_serving_after_a_timeout(
    plugin_env: dict[str, str], serve_factory: Any
) -> None:
    server = serve_factory("--timeout-s", "0.5", env=plugin_env)
    slow = server.ask(detect_request("test_sleep", params={"seconds": 30}, request_id="slow"))
    assert slow["error"]["code"] == "TIMEOUT"
    assert slow["request_id"] == "slow"
    after = server.ask(detect_request(request_id="after"))
    assert after["status"] == "ok" and after["request_id"] == "after"
    assert server.close() == 0


def test_serve_replaces_itself_when_an_algorithm_ignores_the_timeout(
    plugin_env: dict[str, str], serve_factory: Any
) -> None:
    server = serve_factory("--timeout-s", "0.3", "--hard-grace-s", "0.5", env=plugin_env)
    assert server.ask(detect_request(request_id="before"))["status"] == "ok"
    stuck = server.ask(detect_request("test_stubborn", params={"seconds": 120}, request_id="stuck"))
    assert stuck["error"]["code"] == "TIMEOUT"
    assert stuck["request_id"] == "stuck"
    # The same process (same pid, same pipes) goes on with a fresh interpreter.
    for i in range(3):
        response = server.ask(detect_request(request_id=f"next-{i}"))
        assert response["status"] == "ok" and response["request_id"] == f"next-{i}"
    assert server.close() == 0
    assert '"restarted_after":"hard-timeout"' in server.stderr_text()


def test_oversized_frame_is_refused_and_skipped(serve_factory: Any) -> None:
    server = serve_factory("--max-request-mb", "1")
    big = b"x" * (2 * 1024 * 1024)
    refused = server.ask(big)
    assert refused["error"]["code"] == "INVALID_INPUT"
    assert "exceeds" in refused["error"]["message"]
    assert server.ask(detect_request(request_id="small"))["request_id"] == "small"
    assert server.close() == 0


def test_truncated_frame_gets_an_error_and_a_clean_exit() -> None:
    body = dumps(detect_request())
    done = cli("serve", stdin=frame(body) + struct.pack(">I", 1000) + b"only a little")
    assert done.returncode == 0
    first, last = (orjson.loads(b) for b in read_frames(done.stdout))
    assert first["status"] == "ok"
    assert last["error"]["code"] == "INVALID_INPUT"
    assert "truncated" in last["error"]["message"]


def test_empty_input_ends_cleanly_with_no_output() -> None:
    done = cli("serve")
    assert done.returncode == 0
    assert done.stdout == b""


def test_empty_frame_is_invalid_input() -> None:
    done = cli("serve", stdin=frame(b"") + frame(dumps(detect_request())))
    first, second = (orjson.loads(b) for b in read_frames(done.stdout))
    assert first["error"]["code"] == "INVALID_INPUT"
    assert second["status"] == "ok"


def test_serve_does_not_keep_memory_of_large_requests(serve_factory: Any) -> None:
    server = serve_factory("--log-level", "warning")
    big = dumps(detect_request(n=400_000, request_id="big", include_band=False))
    rss = []
    for _ in range(8):
        assert server.ask(big)["status"] == "ok"
        with open(f"/proc/{server.proc.pid}/statm") as statm:
            rss.append(int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    growth_mb = (rss[-1] - rss[1]) / 2**20
    assert growth_mb < 30, f"RSS grew {growth_mb:.0f} MB over 7 identical requests: {rss}"
    assert server.close() == 0


def test_frame_and_unframe_let_a_person_try_serve_by_hand() -> None:
    """frame FILE... | serve | unframe: one answer per request, one per line, in order."""
    files = [EXAMPLES / "requests" / "ksigma.json", EXAMPLES / "requests" / "correlation.json"]
    framed = cli("frame", *map(str, files))
    assert framed.returncode == 0
    assert framed.stdout == b"".join(encode_frame(path.read_bytes()) for path in files)
    served = subprocess.run(
        [sys.executable, "-m", "warden_algos", "serve"],
        input=framed.stdout,
        capture_output=True,
        timeout=120,
        check=True,
    )
    shown = cli("unframe", stdin=served.stdout)
    assert shown.returncode == 0
    answers = [orjson.loads(line) for line in shown.stdout.splitlines()]
    assert [a["request_id"] for a in answers] == ["example-ksigma-1", "example-correlation-1"]
    assert all(a["status"] == "ok" for a in answers)


def test_frame_reads_json_lines_and_unframe_reports_a_cut_frame() -> None:
    lines = [dumps(detect_request(request_id=f"r{i}")) for i in range(3)]
    framed = cli("frame", stdin=b"\n".join(lines) + b"\n\n")
    assert framed.stdout == b"".join(encode_frame(line) for line in lines)
    cut = cli("unframe", stdin=framed.stdout[:-5])
    assert cut.returncode == 1
    assert cut.stdout.splitlines() == lines[:2]  # what was whole is still shown
    assert b"unframe: error: input ended" in cut.stderr

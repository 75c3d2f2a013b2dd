"""``serve --poll-us``: waiting for the next frame by polling before blocking changes when the
process reads, never what it answers: the same answers, a request after the poll window still
answered, end of input noticed during a poll, and the busy wait really happens (CPU time)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from warden_algos.wire.framing import FrameReader

from .conftest import ServeProcess, cli, detect_request, dumps, frame

POLL_US = "300000"  # 0.3 s: long enough to see in CPU time, short enough to outwait


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(server: ServeProcess) -> float:
    """CPU time the process spends in the 0.6 s after answering a request."""
    server.ask(detect_request("ksigma"))
    before = cpu_seconds(server.proc.pid)
    time.sleep(0.6)
    return cpu_seconds(server.proc.pid) - before


def test_a_polling_server_answers_as_a_blocking_one() -> None:
    requests = [dumps(detect_request("ksigma", seed=seed)) for seed in range(5)]
    answers = {}
    for options in ((), ("--poll-us", POLL_US)):
        server = ServeProcess("--log-level", "error", *options)
        try:
            answers[options] = [server.ask(body) for body in requests]
            time.sleep(0.5)  # past the poll window: the next read blocks, and still answers
            answers[options].append(server.ask(requests[0]))
        finally:
            server.proc.stdin.close()  # type: ignore[union-attr]
            started = time.monotonic()
            assert server.proc.wait(timeout=10) == 0
            assert time.monotonic() - started < 2.0  # end of input is seen during a poll too
    blocking, polling = answers.values()
    assert polling == blocking
    assert all(answer["status"] == "ok" for answer in polling)


def test_the_poll_keeps_a_cpu_busy_and_blocking_does_not() -> None:
    polling = ServeProcess("--log-level", "error", "--poll-us", POLL_US)
    blocking = ServeProcess("--log-level", "error")
    try:
        busy, idle = idle_cpu(polling), idle_cpu(blocking)
    finally:
        for server in (polling, blocking):
            server.proc.stdin.close()  # type: ignore[union-attr]
            server.proc.wait(timeout=10)
    # About 0.3 s of a CPU when it has one to itself; far less when the other xdist worker
    # and the machine's other load share the two cores (0.05 s was seen): the blocking one
    # spends none, at the clock's 0.01 s resolution.
    assert busy >= 0.03, busy
    assert busy > idle + 0.02, (busy, idle)


@pytest.mark.parametrize("value", ["-1", "1000001", "fast", "1.5"])
def test_a_poll_out_of_range_is_refused_before_serving(value: str) -> None:
    done = cli("serve", "--poll-us", value, stdin=b"")
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"--poll-us" in done.stderr


def test_the_reader_polls_then_reads_a_frame_written_in_pieces() -> None:
    read_end, write_end = os.pipe()
    body = b"x" * 100_000
    reader = FrameReader(read_end, 1 << 20, poll_s=0.05)

    def write_slowly() -> None:
        data = frame(body)
        for start in range(0, len(data), 30_000):
            time.sleep(0.02)  # the first piece arrives during the poll, the rest after it
            os.write(write_end, data[start : start + 30_000])
        os.close(write_end)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        assert bytes(reader.read_frame() or b"") == body
        assert reader.read_frame() is None  # end of input, noticed by the poll
    finally:
        writer.join()
        os.close(read_end)

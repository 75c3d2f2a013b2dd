"""The two loops around the dispatcher: one-shot ``run`` and framed ``serve``.

They share everything but the loop. Both own the protocol descriptor (see ``stdio``), apply the
request-size limit, and arm the hard watchdog when a timeout is set. Exit status follows the
conventions: 0 whenever a response was written, non-zero only when none could be.

A one-shot JSON answer ends with one newline (see ``one_shot_terminator``); serve frames and Thrift
answers carry the bare document.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from warden_algos.interfaces import InvalidInput
from warden_algos.interfaces.errors import AlgorithmFailed, RequestTimeout
from warden_algos.wire import (
    FrameReader,
    FrameTooLarge,
    FrameWriter,
    TruncatedFrame,
    get_codec,
)

from .deadline import Watchdog
from .dispatcher import Dispatcher, Outcome
from .stdio import claim_stdout, restore_stdout
from .wire.framing import MAX_FRAME_BYTES

if TYPE_CHECKING:
    from .state_cache import StateCache

log = logging.getLogger("warden_algos.server")

RESTART_ENV = "WARDEN_ALGOS_RESTARTED"


class ServerOptions(NamedTuple):
    format: str = "json"
    timeout_s: float | None = None
    hard_grace_s: float = 2.0
    max_request_bytes: int = 128 * 1024 * 1024
    #: Stored models a detect request may name (``model``); None: no folder.
    models_dir: Path | None = None
    #: serve: bytes of recent states kept by sha256 (``state_sha256``); 0 keeps none.
    state_cache_bytes: int = 0
    #: serve: seconds to poll for the next frame before blocking (``--poll-us``; framing.py).
    poll_s: float = 0.0


def _state_cache(options: ServerOptions) -> StateCache | None:
    if options.state_cache_bytes <= 0:
        return None
    from .state_cache import StateCache

    return StateCache(options.state_cache_bytes)


def one_shot_terminator(format_name: str) -> bytes:
    """What ``run`` writes after the response document in ``format_name``.

    JSON gets one newline, so on a terminal the next log line or prompt starts on a line of its own;
    it is not part of the document (a JSON reader skips it; the shared vectors and serve frames hold
    the bare document). Thrift gets nothing: its bytes are the message, byte for byte.
    """
    return b"\n" if format_name == "json" else b""


def _log_outcome(outcome: Outcome) -> None:
    log.info(
        "request %s",
        outcome.status,
        extra={
            "request_id": outcome.request_id,
            "algorithm": outcome.algorithm,
            "status": outcome.status,
            "code": None if outcome.code is None else outcome.code.value,
            "elapsed_ms": round(outcome.elapsed_ms, 3),
        },
    )


def _own_command() -> list[str]:
    """The command line that started this process, to start a fresh copy of it."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *sys.argv[1:]]
    return list(sys.orig_argv)


def _read_all(fd: int, limit: int) -> bytes | None:
    """All of stdin, or None (after draining it) when it exceeds ``limit`` bytes."""
    raw = io.FileIO(fd, "rb", closefd=False)
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = raw.read(1 << 20)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            while raw.read(1 << 20):
                pass
            return None
        chunks.append(chunk)


def _answer_hard_timeout(
    dispatcher: Dispatcher,
    options: ServerOptions,
    answered: threading.Lock,
    write: Callable[[bytes], None],
    consequence: str,
) -> None:
    """Write the TIMEOUT answer for the request in flight when the watchdog's hard deadline
    passes (the algorithm never yielded); ``consequence`` says what the loop does next."""
    error = RequestTimeout(
        f"the request did not finish within {options.timeout_s:g} s (--timeout-s); the algorithm "
        f"did not yield, so {consequence}"
    )
    with answered:
        write(dispatcher.error_body(error, dispatcher.in_flight_request_id))


def run_once(options: ServerOptions) -> int:
    protocol_fd = claim_stdout()
    writer = FrameWriter(protocol_fd)
    dispatcher = Dispatcher(
        get_codec(options.format),
        timeout_s=options.timeout_s,
        state_cache=_state_cache(options),
        models_dir=options.models_dir,
    )
    answered = threading.Lock()
    terminator = one_shot_terminator(options.format)

    def write_answer(body: bytes) -> None:
        """The one answer of this process, whichever path writes it (normal or watchdog)."""
        writer.write_all(body)
        if terminator:
            writer.write_all(terminator)

    def answer_timeout() -> None:
        _answer_hard_timeout(dispatcher, options, answered, write_answer, "the process was ended")
        log.error("hard timeout: answered TIMEOUT and ending the process")
        sys.stderr.flush()
        os._exit(0)

    watchdog = (
        Watchdog(options.timeout_s, options.hard_grace_s, answer_timeout)
        if options.timeout_s
        else None
    )
    raw = _read_all(0, options.max_request_bytes)
    if watchdog is not None:
        watchdog.begin()
    if raw is None:
        body = dispatcher.error_body(
            InvalidInput(f"request exceeds the limit of {options.max_request_bytes} bytes")
        )
    else:
        body, outcome = dispatcher.handle(raw)
        _log_outcome(outcome)
    if watchdog is not None and not watchdog.end():
        threading.Event().wait()  # the watchdog answered and is ending the process
    try:
        with answered:
            write_answer(body)
    except BrokenPipeError:
        log.error("stdout was closed before the response could be written")
        return 1
    return 0


def serve(options: ServerOptions) -> int:
    protocol_fd = claim_stdout()
    reader = FrameReader(0, options.max_request_bytes, options.poll_s)
    writer = FrameWriter(protocol_fd)
    dispatcher = Dispatcher(
        get_codec(options.format),
        timeout_s=options.timeout_s,
        state_cache=_state_cache(options),
        models_dir=options.models_dir,
    )
    answered = threading.Lock()

    def answer_timeout_and_restart() -> None:
        _answer_hard_timeout(
            dispatcher, options, answered, writer.write_frame, "the worker restarted"
        )
        log.error("hard timeout: answered TIMEOUT; replacing this process with a fresh copy")
        sys.stderr.flush()
        restore_stdout(protocol_fd)
        os.environ[RESTART_ENV] = "hard-timeout"
        command = _own_command()
        os.execv(sys.executable, command)

    watchdog = (
        Watchdog(options.timeout_s, options.hard_grace_s, answer_timeout_and_restart)
        if options.timeout_s
        else None
    )
    restarted = os.environ.pop(RESTART_ENV, None)
    log.info(
        "serving",
        extra={"format": options.format, "pid": os.getpid(), "restarted_after": restarted},
    )
    served = 0
    while True:
        try:
            frame = reader.read_frame()
        except FrameTooLarge as error:
            # Answered before its body arrives; the next read_frame skips the body as it comes.
            body = dispatcher.error_body(
                InvalidInput(
                    f"{error} (--max-request-mb {options.max_request_bytes / 2**20:g}); "
                    "the frame's body is skipped"
                )
            )
        except TruncatedFrame as error:
            body = dispatcher.error_body(InvalidInput(f"truncated frame: {error}"))
            with answered:
                writer.write_frame(body)
            log.error("input ended inside a frame", extra={"served": served})
            return 0
        else:
            if frame is None:
                if reader.ended_inside_refused_frame is not None:
                    log.warning(
                        "input ended inside a refused oversized frame (already answered)",
                        extra={"served": served, "missing": reader.ended_inside_refused_frame},
                    )
                else:
                    log.info("end of input", extra={"served": served})
                return 0
            if watchdog is not None:
                watchdog.begin()
            body, outcome = dispatcher.handle(frame)
            del frame
            _log_outcome(outcome)
            if len(body) > MAX_FRAME_BYTES:  # an answer no frame can carry: say so, serve on
                body = dispatcher.error_body(
                    AlgorithmFailed(
                        f"the answer is {len(body)} bytes, more than a frame carries "
                        f"({MAX_FRAME_BYTES}): ask for fewer points, or without the band or "
                        "explanations"
                    ),
                    outcome.request_id,
                )
            if watchdog is not None and not watchdog.end():
                threading.Event().wait()  # the watchdog answered and is replacing the process
        try:
            with answered:
                writer.write_frame(body)
        except BrokenPipeError:
            log.error("stdout closed; stopping", extra={"served": served})
            return 1
        served += 1

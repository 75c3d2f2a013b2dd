"""``warden-algos http``: the argument parser (cheap, always built) and the command (which alone
imports Starlette and uvicorn, so ``run`` never pays for them)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

#: Where the bearer token may come from when --token-file is not given.
TOKEN_ENV = "WARDEN_HTTP_TOKEN"
DEFAULT_PORT = 8080


def _positive(kind: type[float] | type[int]) -> Any:
    def parse(text: str) -> float | int:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _timeout(text: str) -> float | None:
    return None if text.strip().lower() == "none" else _positive(float)(text)


def add_http_parser(commands: Any) -> None:
    http = commands.add_parser(
        "http",
        help="answer request envelopes over HTTP (POST /v1/detect, /v1/rca, /v1/fit) with a "
        "pool of serve workers",
        description="The wire contract over HTTP for callers that are not the JVM host: POST "
        "the JSON request envelope to /v1/detect, /v1/rca or /v1/fit (its interface), get the "
        "response envelope back, with an HTTP status from its error code (README: The HTTP "
        "executor). GET /v1/algorithms, /healthz, /readyz, /openapi.json. "
        "Logs go to stderr. Binds 127.0.0.1 unless --host is given. A bearer token, from "
        f"--token-file or ${TOKEN_ENV}, is then required on every route but /healthz and /readyz.",
    )
    http.add_argument("--host", default="127.0.0.1", help="listen address (default: 127.0.0.1)")
    http.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"listen port (default: {DEFAULT_PORT})",
    )
    http.add_argument(
        "--workers", type=_positive(int), default=2, help="serve workers: concurrent requests (2)"
    )
    http.add_argument(
        "--timeout-s",
        type=_timeout,
        default=60.0,
        help="a request's deadline: the worker answers TIMEOUT (504) past it; 'none' for no "
        "limit (default: 60)",
    )
    http.add_argument(
        "--hard-grace-s",
        type=_positive(float),
        default=2.0,
        help="the workers' --hard-grace-s: an algorithm ignoring its deadline is abandoned this "
        "much later (default: 2)",
    )
    http.add_argument(
        "--reply-slack-s",
        type=_positive(float),
        default=10.0,
        help="a worker still silent this long after timeout + grace is killed and replaced "
        "(504) (default: 10)",
    )
    http.add_argument(
        "--queue-wait-s",
        type=_positive(float),
        default=10.0,
        help="how long a request waits for a free worker before 503 (default: 10)",
    )
    http.add_argument(
        "--max-body-mb",
        type=_positive(float),
        default=64.0,
        help="largest request body, in MiB: 413 beyond (default: 64)",
    )
    http.add_argument(
        "--body-timeout-s",
        type=_positive(float),
        default=30.0,
        help="a request's body must arrive within this: 408 otherwise (default: 30)",
    )
    http.add_argument(
        "--header-timeout-s",
        type=_positive(float),
        default=10.0,
        help="a request's line and headers must arrive within this, else the connection is "
        "closed (default: 10)",
    )
    http.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the bearer token (else ${TOKEN_ENV}; neither: no token required)",
    )
    http.add_argument(
        "--models-dir",
        type=Path,
        help="stored models (models sync fills it), passed to the workers: a detect request may "
        "name its series' model instead of carrying the state",
    )
    http.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level, the workers' too (default: info)",
    )


def read_token(token_file: Path | None) -> bytes | None:
    """The token (surrounding whitespace dropped), or None when neither source gives one."""
    if token_file is not None:
        text = token_file.read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"{token_file} is empty")
        return text.encode()
    text = os.environ.get(TOKEN_ENV, "").strip()
    return text.encode() if text else None


def run_http(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from warden_algos import logs
    from warden_algos.httpexec import protocol
    from warden_algos.httpexec.app import Executor, Settings, build_app

    logs.configure(args.log_level)
    try:
        token = read_token(args.token_file)
    except (OSError, ValueError) as error:
        print(f"warden-algos http: error: the token: {error}", file=sys.stderr)
        return 2
    settings = Settings(
        workers=args.workers,
        timeout_s=args.timeout_s,
        hard_grace_s=args.hard_grace_s,
        reply_slack_s=args.reply_slack_s,
        queue_wait_s=args.queue_wait_s,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        body_timeout_s=args.body_timeout_s,
        token=token,
        models_dir=args.models_dir,
        log_level=args.log_level,
    )
    protocol.HEADER_TIMEOUT_S = args.header_timeout_s
    config = uvicorn.Config(
        build_app(Executor(settings)),
        host=args.host,
        port=args.port,
        http=protocol.HeadDeadlineProtocol,
        ws="none",
        lifespan="on",
        log_config=None,  # our JSON lines on stderr (logs.configure), not uvicorn's format
        log_level=args.log_level,
        access_log=False,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=64 * 1024,  # a request head larger than this is refused
        server_header=False,
    )
    logging.getLogger("warden_algos.http").info(
        "listening", extra={"host": args.host, "port": args.port, "token": token is not None}
    )
    uvicorn.Server(config).run()
    return 0

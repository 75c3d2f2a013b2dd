"""The ``warden-algos`` command: run, serve, list, describe, check, schema, version, new, frame,
unframe, evaluate, and the package-only build and delivery commands.

Imports are deferred into each sub-command so that ``run`` pays only for what a request needs;
``list``/``describe`` may use rich, which the hot path never imports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from warden_algos import __version__
from warden_algos.batch.cli import add_batch_parser, run_batch
from warden_algos.delivery.cli import (
    add_delivery_parsers,
    run_node,
    run_pull,
    run_release,
    run_test_deploy,
)
from warden_algos.delivery.keys import run_keys
from warden_algos.evaluation.cli import add_evaluate_parser, run_evaluate
from warden_algos.httpexec.cli import add_http_parser, run_http
from warden_algos.modelstore.cli import add_models_parser, run_models

FORMATS = [
    "json",
    "thrift-binary",
    "thrift-compact",
]  # kept in step with serialization.codec.CODECS by a test


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


#: A serve process is long-lived and shared by many requests: one runaway request must not hold
#: it for ever. A one-shot run is bounded by its host, which owns (and can kill) the process.
SERVE_DEFAULT_TIMEOUT_S = 60.0
#: serve's cache of recent states (see warden_algos/state_cache.py).
DEFAULT_STATE_CACHE_MB = 256.0


def _timeout(text: str) -> float | None:
    """Seconds > 0, or ``none`` for no limit (said explicitly, never by accident)."""
    return None if text.strip().lower() == "none" else _positive_float(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _poll_us(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of microseconds, got {text}"
        ) from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1000000, got {text}")
    return value


def _add_server_options(
    parser: argparse.ArgumentParser, default_timeout_s: float | None = None
) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="json",
        help="wire format of requests and responses (default: json)",
    )
    shown = "none" if default_timeout_s is None else f"{default_timeout_s:g}"
    parser.add_argument(
        "--timeout-s",
        type=_timeout,
        default=default_timeout_s,
        help=f"answer TIMEOUT when a request takes longer; 'none' for no limit (default: {shown})",
    )
    parser.add_argument(
        "--hard-grace-s",
        type=_positive_float,
        default=2.0,
        help="extra time before an algorithm that ignores the timeout is "
        "abandoned by restarting the process (default: 2)",
    )
    parser.add_argument(
        "--max-request-mb",
        type=_positive_int,
        default=128,
        help="largest request accepted, in MiB (default: 128)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level (default: info)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="stored models (models sync fills it): a detect request may name its series' "
        "model instead of carrying the state",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warden-algos",
        description="Run anomaly-detection and RCA algorithms for the warden platform.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="answer one request from stdin on stdout")
    _add_server_options(run)
    serve = commands.add_parser(
        "serve", help="answer length-prefixed request frames from stdin until it ends"
    )
    _add_server_options(serve, SERVE_DEFAULT_TIMEOUT_S)
    serve.add_argument(
        "--state-cache-mb",
        type=float,
        default=DEFAULT_STATE_CACHE_MB,
        help="recent states kept so a request can name one by its sha256 instead of resending "
        f"it, in MiB; 0 keeps none (default: {DEFAULT_STATE_CACHE_MB:g})",
    )
    serve.add_argument(
        "--poll-us",
        type=_poll_us,
        default=0,
        help="after each answer, poll for the next request for up to this many microseconds "
        "before blocking: lower latency for a host that calls back at once (a pipe round trip "
        "skips waking an idle CPU), at the cost of a busy CPU meanwhile; at most 1000000 "
        "(default: 0, block at once)",
    )
    listing = commands.add_parser("list", help="list the registered algorithms")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    describe = commands.add_parser("describe", help="show an algorithm's interface and params")
    describe.add_argument("name")
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    check = commands.add_parser(
        "check", help="run the contract checks on a registered algorithm (see warden_algos.testing)"
    )
    check.add_argument("name")
    schema = commands.add_parser(
        "schema",
        help="print the JSON schema of the wire envelope, or write every contract file",
        description="Print the JSON schema of the request or response envelope, or, with "
        "--write, (re)generate the contract files (envelope and params schemas, index.json) in "
        "a folder: warden-algos schema --write interfaces",
    )
    schema.add_argument("which", nargs="?", choices=["request", "response"])
    schema.add_argument(
        "--write",
        type=Path,
        metavar="DIR",
        help="write request/response schemas, params/<algorithm>.schema.json of every built-in "
        "and index.json into DIR, removing params schemas of algorithms that no longer exist",
    )
    schema.set_defaults(schema_parser=schema)  # _schema reports a missing argument with it
    version = commands.add_parser("version", help="print the version")
    version.add_argument("--json", action="store_true", help="machine-readable output")
    new = commands.add_parser(
        "new",
        help="make a ready algorithm package: params, algorithm, example request, tests, README",
        description="Writes a package that installs, registers its algorithm through an entry "
        "point and passes its own tests at once; then edit src/<module>/algorithm.py.",
    )
    new.add_argument("name", help="the algorithm's name, lower_snake_case")
    new.add_argument("--interface", choices=["detect", "rca"], default="detect")
    new.add_argument("--dir", type=Path, help="where to write it (default ./warden-<name>)")
    frame = commands.add_parser(
        "frame",
        help="wrap requests in serve-mode frames, to try serve by hand",
        description="Each FILE becomes one frame (any format); without FILEs, each non-empty "
        "line of stdin (JSON Lines) does. Try: warden-algos frame a.json b.json | "
        "warden-algos serve | warden-algos unframe",
    )
    frame.add_argument("files", nargs="*", type=Path, metavar="FILE")
    unframe = commands.add_parser(
        "unframe",
        help="print the bodies of serve-mode frames read from stdin, one per line",
        description="Reads length-prefixed frames (serve's output) and writes each body "
        "followed by a newline; a truncated or oversized frame is reported on stderr, exit 1.",
    )
    unframe.add_argument(
        "--max-frame-mb", type=int, default=128, help="refuse larger frames (default 128)"
    )
    add_evaluate_parser(commands)
    add_delivery_parsers(commands)
    add_models_parser(commands)
    add_batch_parser(commands)
    add_http_parser(commands)
    build = commands.add_parser(
        "build", help="freeze every algorithm into one executable with PyInstaller (see build/)"
    )
    build.add_argument("--onefile", action="store_true", help="one file instead of a folder")
    build.add_argument(
        "--verify",
        action="store_true",
        help="replay on the result, byte for byte against this process: every vector and example "
        "request, every algorithm's conformance cases, every request a plugin ships in "
        "warden_requests/",
    )
    build.add_argument("--dist", type=Path, help="output folder (default dist/)")
    build.add_argument("--work", type=Path, help="PyInstaller work folder (pyinstaller-work/)")
    build.add_argument(
        "--verify-only", type=Path, metavar="EXECUTABLE", help="verify an existing executable"
    )
    build.add_argument(
        "--algorithm",
        action="append",
        metavar="NAME",
        help="verify only the cases that call this algorithm (repeatable)",
    )
    return parser


def _serve_or_run(args: argparse.Namespace) -> int:
    from warden_algos import logs
    from warden_algos.server import ServerOptions, run_once, serve

    logs.configure(args.log_level)
    options = ServerOptions(
        format=args.format,
        timeout_s=args.timeout_s,
        hard_grace_s=args.hard_grace_s,
        max_request_bytes=args.max_request_mb * 1024 * 1024,
        models_dir=args.models_dir,
        state_cache_bytes=int(getattr(args, "state_cache_mb", 0) * (1 << 20)),
        poll_s=getattr(args, "poll_us", 0) / 1e6,
    )
    return run_once(options) if args.command == "run" else serve(options)


def _registry_or_exit() -> Any:
    from warden_algos.registry import Registry, RegistryError

    try:
        return Registry.discover()
    except RegistryError as error:
        print(f"warden-algos: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def _list(args: argparse.Namespace) -> int:
    from warden_algos.interfaces.multivariate import is_multivariate
    from warden_algos.interfaces.trainable import is_trainable
    from warden_algos.registry import RegistryError

    registry = _registry_or_exit()
    rows: list[dict[str, Any]] = []
    broken = 0
    for name in registry.names():  # one broken plugin must not hide the healthy algorithms
        entry = registry.entries[name]
        row: dict[str, Any] = {"name": name, "source": entry.source, "target": entry.target}
        try:
            algorithm_class = registry.load(name)
        except RegistryError as error:
            broken += 1
            print(f"warden-algos: {error}", file=sys.stderr)
            row.update(
                interface=None, summary=None, trainable=None, multivariate=None, error=str(error)
            )
        else:
            row.update(
                interface=algorithm_class.interface,
                summary=algorithm_class.summary,
                trainable=is_trainable(algorithm_class),
                multivariate=is_multivariate(algorithm_class),
            )
        rows.append(row)
    status = 1 if broken else 0
    if args.json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        return status
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    title = f"warden-algos {__version__}: {len(rows) - broken} algorithms"
    table = Table(title=title + (f", {broken} broken (see the error)" if broken else ""))
    for column in ("name", "interface", "summary", "source"):
        table.add_column(column)
    for row in rows:
        if row.get("error") is None:
            kinds = [row["interface"]]
            kinds += ["fit"] if row["trainable"] else []
            kinds += ["matrix"] if row["multivariate"] else []
            shown = {**row, "interface": ", ".join(kinds)}
            table.add_row(
                *(escape(shown[key] or "") for key in ("name", "interface", "summary", "source"))
            )
        else:
            reason = escape(row["error"] or "")
            table.add_row(
                escape(row["name"] or ""), "[red]BROKEN[/red]", reason, escape(row["source"] or "")
            )
    Console(width=120).print(table)
    return status


def _describe(args: argparse.Namespace) -> int:
    import inspect

    from warden_algos.interfaces import WardenError

    registry = _registry_or_exit()
    try:
        algorithm_class = registry.load(args.name)
    except WardenError as error:
        print(f"warden-algos: {error.message}", file=sys.stderr)
        return 1
    from warden_algos.interfaces.multivariate import is_multivariate
    from warden_algos.interfaces.trainable import TrainableDetector

    method = "detect" if algorithm_class.interface == "detect" else "simple_rca"
    signature = f"{method}{inspect.signature(getattr(algorithm_class, method))}"
    trainable = issubclass(algorithm_class, TrainableDetector)
    info = {
        "name": algorithm_class.name,
        "interface": algorithm_class.interface,
        "summary": algorithm_class.summary,
        "description": algorithm_class.description(),
        "signature": signature,
        "source": registry.entries[args.name].source,
        "params_schema": algorithm_class.params_schema(),
        "trainable": trainable,
        "state": algorithm_class.state_schema() if trainable else None,
        "multivariate": is_multivariate(algorithm_class),
    }
    import orjson

    if args.json:
        sys.stdout.buffer.write(orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print(f"{info['name']} ({info['interface']}): {info['summary']}")
    print(f"source: {info['source']}")
    print(f"interface: {signature}")
    if trainable:
        state = info["state"]
        print(
            f"trainable: fit(dimensions, timestamps, values) -> state (version "
            f"{state['state_version']}: {', '.join(state['fields'])}); detect with a state "
            "scores only new points"
        )
    if info["multivariate"]:
        print(
            "multivariate: detect_matrix(dimensions, timestamps, matrix, columns) -> detections "
            "with each column's share (run_detect_matrix; fit_matrix to train on a matrix)"
        )
    if info["description"]:
        print()
        print(info["description"])
    print()
    print("params (JSON schema):")
    print(orjson.dumps(info["params_schema"], option=orjson.OPT_INDENT_2).decode())
    return 0


def _check(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from warden_algos.interfaces import WardenError
    from warden_algos.testing import run_checks

    registry = _registry_or_exit()
    try:
        algorithm_class = registry.load(args.name)
    except WardenError as error:
        print(f"warden-algos: {error.message}", file=sys.stderr)
        return 1
    results = run_checks(algorithm_class)
    table = Table(title=f"conformance checks for {args.name}", show_lines=True)
    for column in ("check", "result", "detail"):
        table.add_column(column)
    for result in results:
        if result.known_failure is not None:
            mark, detail = "[yellow]known failure[/yellow]", result.known_failure
        elif result.passed:
            mark, detail = "[green]pass[/green]", result.detail
        else:
            mark, detail = "[red]FAIL[/red]", f"{result.detail}\n[bold]fix:[/bold] {result.fix}"
        table.add_row(result.check, mark, detail)
    Console(width=120, stderr=False).print(table)
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _schema(args: argparse.Namespace) -> int:
    from warden_algos import contract_files

    if (args.which is None) == (args.write is None):
        args.schema_parser.error(
            "give request or response to print that envelope's schema, or --write DIR to "
            "write every contract file into DIR (one of them, not both)"
        )
    if args.write is None:
        sys.stdout.buffer.write(contract_files.dump(contract_files.envelope_schema(args.which)))
        return 0
    from warden_algos.interfaces import WardenError

    try:
        written = contract_files.write_contract_files(args.write)
    except WardenError as error:  # a built-in that fails its contract checks, named
        print(f"warden-algos schema: error: {error.message}", file=sys.stderr)
        return 1
    for relative in written.changed:
        print(f"wrote {args.write / relative}")
    for relative in written.removed:
        print(f"removed {args.write / relative} (no such built-in algorithm)")
    print(
        f"{len(written.changed)} written, {len(written.unchanged)} unchanged, "
        f"{len(written.removed)} removed in {args.write}"
    )
    return 0


def _interface_or_none(registry: Any, name: str) -> str | None:
    """A plugin that fails to load must not take ``version`` down with it."""
    from warden_algos.interfaces.errors import WardenError

    try:
        interface: str = registry.load(name).interface
    except WardenError:
        return None
    return interface


def _version(args: argparse.Namespace) -> int:
    if not args.json:
        print(f"warden-algos {__version__}")
        return 0
    import platform

    import orjson

    from warden_algos.frozen import baked, current_stamp
    from warden_algos.registry import Registry

    stamp = current_stamp()
    registry = Registry.discover()
    info = {
        "version": __version__,
        "python": platform.python_version(),
        "frozen": bool(getattr(sys, "frozen", False)),
        "git_commit": stamp.git_commit,
        # A build's time; an ordinary install has none (its stamp time is just "now").
        "build_time": stamp.build_time if baked() is not None else None,
        "algorithms": [
            {
                "name": name,
                "interface": _interface_or_none(registry, name),
                "source": registry.entries[name].source,
            }
            for name in registry.names()
        ],
    }
    sys.stdout.buffer.write(orjson.dumps(info) + b"\n")
    return 0


def _build(args: argparse.Namespace) -> int:
    from warden_algos.executable.freeze import BuildError, freeze
    from warden_algos.executable.verify import verify
    from warden_algos.resources import example_requests

    examples = example_requests()
    if args.verify_only is not None:
        executable = args.verify_only
    else:
        try:
            built = freeze("onefile" if args.onefile else "onedir", args.dist, args.work)
        except BuildError as error:
            print(f"warden-algos build: error: {error}", file=sys.stderr)
            return 1
        executable = built.executable
        print(
            f"built {built.artifact} in {built.seconds:.0f} s; manifest {built.manifest}",
            file=sys.stderr,
        )
        if not args.verify:
            return 0
    outcome = verify(executable, examples, only=args.algorithm)
    for problem in outcome.mismatches:
        print(f"MISMATCH {problem}", file=sys.stderr)
    for skipped in outcome.skipped:
        print(f"skipped {skipped}", file=sys.stderr)
    for line in outcome.summary():
        print(f"verified {line}", file=sys.stderr)
    print(
        f"verified {outcome.checked} answers of {executable}: {len(outcome.mismatches)} mismatches",
        file=sys.stderr,
    )
    return 0 if outcome.ok else 1


def _new(args: argparse.Namespace) -> int:
    from warden_algos.registry import BUILTIN_ALGORITHMS, Registry, RegistryError
    from warden_algos.scaffold import ScaffoldError, names_for, scaffold

    try:
        distribution, _, _ = names_for(args.name)
        try:
            taken = frozenset(Registry.discover().names())
        except RegistryError:  # a broken plugin elsewhere does not stop a new package
            taken = frozenset(BUILTIN_ALGORITHMS)
        made = scaffold(args.name, args.interface, args.dir or Path(distribution), taken)
    except ScaffoldError as error:
        print(f"warden-algos new: error: {error}", file=sys.stderr)
        return 2
    for path in made.files:
        print(f"wrote {path}")
    print(
        f"next: pip install -e '{made.folder}[test]' && warden-algos check {args.name} && "
        f"pytest {made.folder / 'tests'}"
    )
    return 0


def _frame(args: argparse.Namespace) -> int:
    from warden_algos.wire import FrameWriter

    writer = FrameWriter(sys.stdout.fileno())
    try:
        bodies = (
            (path.read_bytes() for path in args.files)
            if args.files
            else (line.strip() for line in sys.stdin.buffer if line.strip())
        )
        for body in bodies:
            writer.write_frame(body)
    except (OSError, ValueError) as error:
        print(f"warden-algos frame: error: {error}", file=sys.stderr)
        return 1
    return 0


def _unframe(args: argparse.Namespace) -> int:
    from warden_algos.wire import FrameReader, FrameTooLarge, TruncatedFrame

    reader = FrameReader(sys.stdin.fileno(), args.max_frame_mb * 1024 * 1024)
    out = sys.stdout.buffer
    try:
        while (body := reader.read_frame()) is not None:
            out.write(bytes(body) + b"\n")
            out.flush()
    except (TruncatedFrame, FrameTooLarge) as error:
        print(f"warden-algos unframe: error: {error}", file=sys.stderr)
        return 1
    return 0


COMMANDS = {
    "run": _serve_or_run,
    "new": _new,
    "frame": _frame,
    "unframe": _unframe,
    "serve": _serve_or_run,
    "list": _list,
    "describe": _describe,
    "check": _check,
    "schema": _schema,
    "version": _version,
    "evaluate": run_evaluate,
    "build": _build,
    "release": run_release,
    "pull": run_pull,
    "test-deploy": run_test_deploy,
    "node": run_node,
    "keys": run_keys,
    "models": run_models,
    "batch": run_batch,
    "http": run_http,
}

#: Sub-commands that make, ship or install executables: they need the Python package (PyInstaller,
#: boto3), which the executable leaves out. It still knows them, and says where they live.
PACKAGE_ONLY = frozenset(
    {"build", "release", "pull", "test-deploy", "node", "keys", "models", "batch", "http"}
)


#: The install extra each role command needs (warden_algos/extras.py); checked before it starts.
COMMAND_EXTRAS: dict[str, tuple[str, ...]] = {
    "build": ("build",),
    "release": ("deploy",),
    "pull": ("deploy",),
    "test-deploy": ("deploy",),  # and "build" unless --artifact: freeze() checks that itself
    "node": ("deploy",),
    "keys": ("deploy",),
    # A local store (--store-dir) needs nothing more; S3 needs "deploy" and Parquet "data",
    # which the models command checks itself when it gets there.
    "models": (),
    "batch": (),  # "batch" (Dask, pyarrow), checked by the command itself
    "http": ("http",),  # Starlette and uvicorn
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in PACKAGE_ONLY and getattr(sys, "frozen", False):
        print(
            f"warden-algos {args.command}: not available in the executable, which answers "
            f"requests; run it from the Python package (pip install 'warden-algos"
            f"[{','.join(COMMAND_EXTRAS[args.command] or ('deploy',))}]')",
            file=sys.stderr,
        )
        return 2
    if args.command not in COMMAND_EXTRAS:  # run, version, ...: nothing more to import
        return COMMANDS[args.command](args)
    from warden_algos.extras import MissingExtra, require

    try:
        for extra in COMMAND_EXTRAS[args.command]:
            require(extra, what=f"warden-algos {args.command}")
        return COMMANDS[args.command](args)
    except MissingExtra as error:  # one line naming the extra, never a traceback
        print(f"warden-algos {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

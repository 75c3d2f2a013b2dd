"""``warden-algos models ...``: fit, push, list, show, history, rollback and sync stored models.

The store is S3 (bucket, endpoint and credentials as for releases, ``delivery/config.py``; its
own prefix, ``warden-models`` unless ``--prefix``/``WARDEN_MODELS_PREFIX``) or, with
``--store-dir DIR`` (``WARDEN_MODELS_STORE_DIR``), a local folder with the same semantics that
needs no boto3. Output is text for people or ``--json``; every refusal is one line on stderr,
never a traceback, as for the delivery commands. Only argparse is imported until a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from warden_algos.tracking.options import add_mlflow_options

if TYPE_CHECKING:
    from warden_algos.tracking.client import Tracker

    from .records import ModelMove, ModelPointer
    from .store import ModelStore, SeriesId

#: Models and releases may share a bucket, never a prefix.
DEFAULT_PREFIX = "warden-models"


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store-dir",
        type=Path,
        help="a local folder as the store, instead of S3 (or WARDEN_MODELS_STORE_DIR)",
    )
    parser.add_argument("--config", type=Path, help="TOML file with a [release] table")
    parser.add_argument(
        "--bucket", help="S3 bucket (or WARDEN_MODELS_BUCKET, else the release one)"
    )
    parser.add_argument(
        "--prefix", help=f"key prefix (or WARDEN_MODELS_PREFIX; default {DEFAULT_PREFIX})"
    )
    parser.add_argument(
        "--endpoint-url", help="S3-compatible endpoint (or WARDEN_RELEASE_ENDPOINT_URL)"
    )
    parser.add_argument(
        "--jobs", type=int, default=8, help="objects read or written at once (default: 8)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _add_series(parser: argparse.ArgumentParser, *, why: bool = False) -> None:
    parser.add_argument("--algorithm", required=True)
    parser.add_argument("--key", required=True, help="the series key (detect.model)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--params", help="the params it was fitted with, JSON (default: {}, the defaults)"
    )
    which.add_argument("--params-id", help="the params by id, as list shows it")
    if why:
        parser.add_argument("--why", required=True, help="recorded in the series' history")


def add_value_columns(parser: argparse.ArgumentParser) -> None:
    """``--value-column NAME`` or ``--value-columns A,B,C``: what ``models fit`` and ``batch``
    read as each series' values."""
    values = parser.add_mutually_exclusive_group()
    values.add_argument("--value-column", default="value", help="the values (default: value)")
    values.add_argument(
        "--value-columns",
        metavar="A,B,...",
        help="several value columns, comma-separated (at most 256): each series is then a "
        "matrix of them. An algorithm that fits a matrix (isolation_forest, one_class_svm, "
        "autoencoder) gets one model per series, its detections each column's share; any other "
        "gets one model per series and column, keyed '<series key>,column=<name>'",
    )


def add_models_parser(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="fit series from files, push, list, show, roll back and sync stored models",
        description="Fitted states per algorithm, params and series key, in S3 or a local "
        "folder: immutable blobs named by their sha256, a current-model pointer per series "
        "moved with conditional writes, and its history.",
    )
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = actions.add_parser(
        "fit",
        help="fit every series of CSV/Parquet files and push each model",
        description="A long table (--key-columns host,metric: one series per distinct "
        "combination, across all the files) or one series per file name (files of one name "
        "in several folders are parts of one series), or one series all the files hold "
        "(--key). Timestamps: Unix seconds or ISO 8601; rows in any order; empty values "
        "are missing (NaN). Exit 1 if any series failed; the others are pushed all the same.",
    )
    fit.add_argument("files", nargs="+", type=Path, metavar="FILE")
    fit.add_argument("--algorithm", required=True)
    fit.add_argument("--params", help="JSON object (default: {}, the defaults)")
    fit.add_argument("--key-columns", help="comma-separated columns that name a series")
    fit.add_argument("--key", help="the key of the one series the files hold")
    fit.add_argument("--timestamp-column", default="timestamp")
    add_value_columns(fit)
    fit.add_argument("--why", help="recorded in each series' history (default: the file names)")
    add_mlflow_options(fit)
    push = actions.add_parser("push", help="push a state file as a series' current model")
    push.add_argument("--state", type=Path, required=True, help="a state a fit returned")
    push.add_argument("--key", required=True, help="the series key (detect.model)")
    push.add_argument("--algorithm", help="refuse the state unless fitted by this algorithm")
    push.add_argument("--params", help="refuse the state unless fitted with these params (JSON)")
    push.add_argument("--why", required=True, help="recorded in the series' history")
    listing = actions.add_parser("list", help="the current model of every series")
    show = actions.add_parser("show", help="what a series' model says about itself")
    _add_series(show)
    show.add_argument("--sha", help="another model of the series' history (sha256 or prefix)")
    history = actions.add_parser("history", help="every move of a series' model, oldest first")
    _add_series(history)
    rollback = actions.add_parser(
        "rollback", help="point a series back at the model before the current one, or --to"
    )
    _add_series(rollback, why=True)
    rollback.add_argument("--to", help="a model of the series' history (sha256 or prefix)")
    sync = actions.add_parser(
        "sync",
        help="install the current models into a node's models folder (verified, atomic)",
        description="Download what changed, check each blob's sha256 and decode it before "
        "one rename puts it in place; a model already current is not downloaded. Exit 1 if "
        "any series failed (its old model stays).",
    )
    sync.add_argument("--dest", type=Path, required=True, help="the --models-dir of run/serve")
    for parser in (listing, sync):
        parser.add_argument("--algorithm", action="append", help="only these (repeatable)")
        parser.add_argument("--key", action="append", help="only these series (repeatable)")
    for parser in actions.choices.values():
        _add_store(parser)


def run_models(args: argparse.Namespace) -> int:
    from warden_algos.delivery.config import ConfigError
    from warden_algos.delivery.errors import ReleaseError
    from warden_algos.extras import MissingExtra
    from warden_algos.interfaces.errors import WardenError
    from warden_algos.tracking.client import TrackingError

    ours: tuple[type[Exception], ...] = (ConfigError, ReleaseError, TrackingError, *_s3_errors())
    try:
        return _ACTIONS[args.action](args)
    except MissingExtra as error:
        print(f"warden-algos models {args.action}: error: {error}", file=sys.stderr)
        return 2
    except ours as error:
        print(f"warden-algos models {args.action}: {error}", file=sys.stderr)
        return 1
    except WardenError as error:  # an unknown algorithm, invalid params, an unreadable state
        print(f"warden-algos models {args.action}: {error.code} {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"warden-algos models {args.action}: {error}", file=sys.stderr)
        return 1


def _s3_errors() -> tuple[type[Exception], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # the local store needs no boto3
        return ()
    return (BotoCoreError, ClientError)


# the store and the series -------------------------------------------------------------------
def open_store(args: argparse.Namespace) -> ModelStore:
    from .records import ModelStoreError
    from .store import ModelStore

    store_dir = args.store_dir or os.environ.get("WARDEN_MODELS_STORE_DIR") or None
    if store_dir is not None:
        if args.bucket:
            raise ModelStoreError("--store-dir and --bucket name two stores: give one")
        from .local import FolderObjects

        store = ModelStore(FolderObjects(Path(store_dir)), jobs=args.jobs)
    else:
        from warden_algos.delivery.config import ConfigError, ReleaseConfig
        from warden_algos.extras import require

        from .s3 import S3Objects

        require("deploy", what=f"warden-algos models {args.action} on S3 (or --store-dir DIR)")
        try:
            config = ReleaseConfig.load(
                args.config,
                bucket=args.bucket or os.environ.get("WARDEN_MODELS_BUCKET"),
                prefix=args.prefix or os.environ.get("WARDEN_MODELS_PREFIX") or DEFAULT_PREFIX,
                endpoint_url=args.endpoint_url,
            )
        except ConfigError as error:
            flat = " ".join(line.strip() for line in str(error).splitlines())
            raise ConfigError(f"{flat} (or WARDEN_MODELS_BUCKET; or --store-dir DIR)") from None
        store = ModelStore(S3Objects(config.client(), config.bucket), config.prefix, jobs=args.jobs)
    store.check(writing=args.action in ("fit", "push"))
    return store


def _json_object(text: str | None, flag: str) -> dict[str, Any]:
    import orjson

    from .records import ModelStoreError

    if text is None:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ModelStoreError(f"{flag} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise ModelStoreError(f"{flag} must be a JSON object, got {type(value).__name__}")
    return value


def _algorithm(name: str, params_text: str | None) -> Any:
    """An instance of the registered detector ``name`` with ``params_text``'s params (the
    defaults filled in: what a state records and a node looks its model up by)."""
    from warden_algos.registry import Registry

    algorithm_class = Registry.discover().load_for("detect", name)
    params = _json_object(params_text, "--params")
    return algorithm_class(algorithm_class.validate_params(params))


def _series(args: argparse.Namespace) -> SeriesId:
    import re

    from warden_algos.models_folder import params_id

    from .records import ModelStoreError
    from .store import SeriesId, check_series_key

    if args.params_id is not None:
        if re.fullmatch(r"[0-9a-f]{16}", args.params_id) is None:
            raise ModelStoreError("--params-id is 16 hex digits, as models list shows it")
        return SeriesId(args.algorithm, args.params_id, check_series_key(args.key))
    algorithm = _algorithm(args.algorithm, args.params)
    return SeriesId(algorithm.name, params_id(algorithm.get_params()), check_series_key(args.key))


# output --------------------------------------------------------------------------------------
def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    import orjson

    if args.json:
        sys.stdout.buffer.write(
            orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        )
    else:
        print(text)


def _time(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _span(points: int, start: int | None, end: int | None) -> str:
    return f"{points:,} points {_time(start)}..{_time(end)}"


def _short(sha256: str | None) -> str:
    return "-" if sha256 is None else sha256[:12]


def _move_line(move: ModelMove) -> str:
    return (
        f"#{move.generation}  {move.when}  {move.action:8}  {_short(move.from_sha256)} -> "
        f"{_short(move.to_sha256)}  {move.who}: {move.why}"
    )


def _pointer_line(pointer: ModelPointer) -> str:
    state = pointer.state
    return (
        f"{pointer.algorithm}  {pointer.params_id}  {pointer.series_key}  "
        f"{_short(pointer.sha256)}  {_span(state.seen_points, state.seen_start, state.seen_end)}"
        f"  #{pointer.generation} {pointer.updated_at[:19]} {pointer.updated_by}"
    )


# actions -------------------------------------------------------------------------------------
def _fit(args: argparse.Namespace) -> int:
    from warden_algos.interfaces.trainable import TrainableDetector
    from warden_algos.tracking.fitting import with_run

    from .records import ModelStoreError
    from .tables import read_series, value_columns
    from .training import fit_and_push

    algorithm = _algorithm(args.algorithm, args.params)
    if not isinstance(algorithm, TrainableDetector):
        raise ModelStoreError(
            f"{algorithm.name} is not trainable: it has no fit and no model to store "
            "(`warden-algos list` marks the trainable algorithms)"
        )
    tracker = _tracker(args)  # reachable, before any file is read
    keys = [name.strip() for name in (args.key_columns or "").split(",") if name.strip()]
    columns = value_columns(args.value_column, args.value_columns)
    series = read_series(
        args.files,
        timestamp_column=args.timestamp_column,
        value_column=columns[0] if len(columns) == 1 else columns,
        key_columns=keys,
        key=args.key,
    )
    store = open_store(args)
    why = args.why or f"models fit {' '.join(path.name for path in args.files)}"[:500]
    run_id = None
    if tracker is not None:
        run_id = _start_run(tracker, args, algorithm, store)
        why = with_run(why, run_id)
    started = time.perf_counter()
    try:
        outcomes = fit_and_push(store, algorithm, series, why=why, jobs=args.jobs)
    except BaseException:
        if tracker is not None and run_id is not None:
            tracker.finish(run_id, ok=False)
        raise
    fit_s = time.perf_counter() - started
    counts = {status: sum(o.status == status for o in outcomes) for status in _FIT_STATUSES}
    rows, lines = [], []
    for outcome in outcomes:
        info = outcome.info
        rows.append(
            {
                "key": outcome.key,
                "status": outcome.status,
                "error": outcome.error,
                "sha256": outcome.sha256,
                "size": outcome.size,
                "points": None if info is None else info.seen_points,
                "seen_start": None if info is None else info.seen_start,
                "seen_end": None if info is None else info.seen_end,
                "generation": None if outcome.move is None else outcome.move.generation,
                "from_sha256": None if outcome.move is None else outcome.move.from_sha256,
            }
        )
        if len(columns) > 1:  # which column a per-column model is of (None: the whole series)
            rows[-1]["column"] = outcome.column
        if info is None:
            lines.append(f"FAILED   {outcome.key}: {outcome.error}")
        else:
            lines.append(
                f"{outcome.status:8} {outcome.key}  {_short(outcome.sha256)}  "
                f"{_span(info.seen_points, info.seen_start, info.seen_end)}"
            )
    summary = ", ".join(f"{counts[status]} {status}" for status in _FIT_STATUSES)
    counted = f"{len(outcomes)} series"
    if len(outcomes) != len(series):  # per-column models
        counted = f"{len(outcomes)} models of {len(series)} series"
    lines.append(f"{counted} of {algorithm.name}: {summary}")
    _emit(args, {"algorithm": algorithm.name, "series": rows, **counts}, "\n".join(lines))
    if tracker is not None and run_id is not None:
        from warden_algos.models_folder import params_id
        from warden_algos.tracking.fitting import log_models_fit

        log_models_fit(
            tracker,
            run_id,
            store=store,
            algorithm=algorithm.name,
            params_id=params_id(algorithm.get_params()),
            outcomes=outcomes,
            series=len(series),
            fit_s=fit_s,
            ok=not counts["failed"],
        )
        tracker.announce(run_id, f"models fit {algorithm.name}")
    return 1 if counts["failed"] else 0


def _tracker(args: argparse.Namespace) -> Tracker | None:
    """The MLflow store of ``--mlflow``, proven reachable; None without the option."""
    if getattr(args, "mlflow", None) is None:
        return None
    from warden_algos.tracking.client import Tracker

    return Tracker.connect(args.mlflow, args.mlflow_experiment)


def _start_run(tracker: Tracker, args: argparse.Namespace, algorithm: Any, store: Any) -> str:
    from warden_algos.models_folder import params_id
    from warden_algos.tracking.fitting import start_fit, store_uri

    return start_fit(
        tracker,
        command="models fit",
        algorithm=algorithm.name,
        params=algorithm.get_params(),
        params_id=params_id(algorithm.get_params()),
        store=store_uri(store),
        inputs=[str(path) for path in args.files],
        started=time.time(),
    )


_FIT_STATUSES = ("pushed", "current", "failed")


def _push(args: argparse.Namespace) -> int:
    from .records import ModelStoreError

    try:
        blob = args.state.read_bytes()
    except OSError as error:
        raise ModelStoreError(f"cannot read the state {args.state}: {error.strerror}") from None
    expected = None
    if args.params is not None and args.algorithm is None:
        raise ModelStoreError("--params needs --algorithm (the params are that algorithm's)")
    if args.algorithm is not None and args.params is not None:
        expected = _algorithm(args.algorithm, args.params).get_params()
    store = open_store(args)
    pushed = store.push(blob, args.key, why=args.why, algorithm=args.algorithm, params=expected)
    pointer, move = pushed.pointer, pushed.move
    text = (
        f"{pointer.algorithm} {pointer.series_key!r}: already at {_short(pointer.sha256)}"
        if move is None
        else f"{pointer.algorithm} {pointer.series_key!r}: {_short(move.from_sha256)} -> "
        f"{_short(move.to_sha256)} (#{move.generation}, {pointer.size:,} bytes)"
    )
    _emit(
        args,
        {
            "moved": move is not None,
            "pointer": pointer.model_dump(),
            "move": None if move is None else move.model_dump(),
        },
        text,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from .store import Unreadable

    found = open_store(args).pointers(args.algorithm, args.key)
    lines = [
        f"UNREADABLE {item.key}: {item.error}"
        if isinstance(item, Unreadable)
        else _pointer_line(item)
        for item in found
    ]
    payload = [
        {"unreadable": item.key, "error": item.error}
        if isinstance(item, Unreadable)
        else item.model_dump()
        for item in found
    ]
    _emit(args, payload, "\n".join(lines) or "(no models)")
    return 1 if any(isinstance(item, Unreadable) for item in found) else 0


def _show(args: argparse.Namespace) -> int:
    from .records import ModelStoreError
    from .store import known_sha

    series = _series(args)
    store = open_store(args)
    pointer = store.pointer(series)
    if pointer is None and args.sha is None:
        raise ModelStoreError(f"no model for {series} in the store")
    sha256 = pointer.sha256 if pointer is not None else ""
    if args.sha is not None:
        sha256 = known_sha(args.sha, store.history(series), series)
    blob, info = store.fetch(series, sha256)
    current = pointer is not None and pointer.sha256 == sha256
    payload = {
        "algorithm": series.algorithm,
        "params_id": series.params_id,
        "series_key": series.series_key,
        "sha256": sha256,
        "size": len(blob),
        "current": current,
        "state": info.model_dump(),
        "pointer": pointer.model_dump() if current and pointer is not None else None,
    }
    import orjson

    lines = [
        f"series     {series.series_key}",
        f"algorithm  {info.algorithm} (state version {info.state_version}, fitted by "
        f"warden-algos {info.sdk_version})",
        f"params     {orjson.dumps(info.params, option=orjson.OPT_SORT_KEYS).decode()} "
        f"(id {series.params_id})",
        f"sha256     {sha256}",
        f"size       {len(blob):,} bytes",
        f"seen       {_span(info.seen_points, info.seen_start, info.seen_end)}",
        f"content    {info.content_sha256}",
    ]
    if current and pointer is not None:
        lines.append(
            f"current    yes: #{pointer.generation} ({pointer.action}) {pointer.updated_at} "
            f"{pointer.updated_by}: {pointer.why}"
        )
    else:
        lines.append("current    no (an earlier model of the series)")
    _emit(args, payload, "\n".join(lines))
    return 0


def _history(args: argparse.Namespace) -> int:
    series = _series(args)
    moves = open_store(args).history(series)
    _emit(
        args,
        [move.model_dump() for move in moves],
        "\n".join(_move_line(move) for move in moves) or f"(no moves of {series})",
    )
    return 0


def _rollback(args: argparse.Namespace) -> int:
    series = _series(args)
    pushed = open_store(args).rollback(series, why=args.why, to=args.to)
    assert pushed.move is not None  # a rollback always moves (or refuses)
    _emit(args, pushed.move.model_dump(), _move_line(pushed.move))
    return 0


def _sync(args: argparse.Namespace) -> int:
    from .sync import sync

    store = open_store(args)
    outcomes = sync(
        store, args.dest, algorithms=args.algorithm, series_keys=args.key, jobs=args.jobs
    )
    counts = {status: sum(o.status == status for o in outcomes) for status in _SYNC_STATUSES}
    lines = []
    for outcome in outcomes:
        name = "" if outcome.series is None else str(outcome.series)
        if outcome.status == "installed":
            lines.append(f"installed  {name} -> {_short(outcome.sha256)}")
        elif outcome.status == "failed":
            lines.append(f"FAILED     {name + ': ' if name else ''}{outcome.error}")
    summary = ", ".join(f"{counts[status]} {status}" for status in _SYNC_STATUSES)
    lines.append(f"{len(outcomes)} series into {args.dest}: {summary}")
    rows = [
        {
            "algorithm": None if o.series is None else o.series.algorithm,
            "params_id": None if o.series is None else o.series.params_id,
            "series_key": None if o.series is None else o.series.series_key,
            "status": o.status,
            "sha256": o.sha256,
            "path": None if o.path is None else str(o.path),
            "error": o.error,
        }
        for o in outcomes
    ]
    _emit(args, {"dest": str(args.dest), "series": rows, **counts}, "\n".join(lines))
    return 1 if counts["failed"] else 0


_SYNC_STATUSES = ("installed", "current", "failed")

#: One function per ``models`` action; each opens the store itself, after checking its input.
_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "fit": _fit,
    "push": _push,
    "list": _list,
    "show": _show,
    "history": _history,
    "rollback": _rollback,
    "sync": _sync,
}

"""``warden-algos batch fit|detect``: the parsers (imported at start-up, so argparse only) and the
command, which imports the driver (and Dask) when it runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def add_batch_parser(commands: Any) -> None:
    from warden_algos.modelstore.cli import add_value_columns
    from warden_algos.tracking.options import add_mlflow_options

    batch = commands.add_parser(
        "batch",
        help="fit or score every series of a folder of CSV/Parquet files on a Dask cluster",
        description="Dask tasks over the input files, each read by the worker that runs it; "
        "files holding parts of one series (one name in several folders, or a long table's "
        "parts sharing a key) are read together by one task. fit pushes "
        "a model per series to the model store; detect scores each series with its stored model "
        "(or statelessly, for an algorithm that is not trainable) and writes the anomalies. A "
        "failing series is recorded and never stops the others; exit 1 if any failed, after "
        "everything else is written. A re-run skips files already done with the same bytes, "
        "algorithm, params and SDK version.",
    )
    actions = batch.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("fit", "fit each series and push its model"),
        ("detect", "score each series and write the anomalies"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "inputs",
            nargs="+",
            metavar="INPUT",
            help="files, folders of them, or s3://BUCKET/PREFIX (every table under it)",
        )
        action.add_argument("--algorithm", required=True)
        action.add_argument("--params", help="JSON object (default: {}, the defaults)")
        action.add_argument(
            "--output", required=True, help="folder or s3://BUCKET/PREFIX for results and records"
        )
        action.add_argument("--format", choices=("parquet", "csv"), default="parquet")
        action.add_argument("--key-columns", help="comma-separated columns naming a series")
        action.add_argument("--timestamp-column", default="timestamp")
        add_value_columns(action)
        where = action.add_mutually_exclusive_group()
        where.add_argument(
            "--workers", type=int, help="start a LocalCluster of N processes (default: cores)"
        )
        where.add_argument("--scheduler", help="an existing cluster, tcp://HOST:PORT")
        action.add_argument("--why", help="recorded in each model's history")
        action.add_argument(
            "--files-per-task",
            type=int,
            help="files per Dask task (default: about 16 tasks per worker, at most 64 files)",
        )
        action.add_argument("--no-progress", action="store_true", help="no progress bar")
        store = action.add_argument_group("model store (as `models` takes it)")
        store.add_argument("--store-dir", type=Path, help="a local folder as the store")
        store.add_argument("--bucket", help="S3 bucket (or WARDEN_MODELS_BUCKET)")
        store.add_argument("--prefix", help="key prefix (or WARDEN_MODELS_PREFIX)")
        store.add_argument(
            "--endpoint-url",
            help="S3-compatible endpoint of the store, s3:// inputs and output (or "
            "WARDEN_RELEASE_ENDPOINT_URL)",
        )
        store.add_argument("--config", type=Path, help="TOML file with a [release] table")
    fit = actions.choices["fit"]
    add_mlflow_options(fit.add_argument_group("experiment tracking (one run for the whole job)"))
    detect = actions.choices["detect"]
    detect.add_argument(
        "--since",
        action="store_true",
        help="score only points after the last scored one and move each model on past them, "
        "so that a daily job is incremental (trainable algorithms)",
    )


def _tables(names: list[str]) -> list[str]:
    """The names that are tables ``models fit`` reads (its CSV and Parquet suffixes)."""
    from warden_algos.modelstore.tables import CSV_SUFFIXES, PARQUET_SUFFIXES

    suffixes = CSV_SUFFIXES + PARQUET_SUFFIXES
    return sorted(name for name in names if name.lower().endswith(suffixes))


def _files(inputs: list[str], endpoint_url: str | None) -> list[str]:
    """Every input table: files as given, a folder's tables (not its subfolders'), every table
    under an s3:// prefix. Names only: no file is read here."""
    from warden_algos.modelstore.records import ModelStoreError

    from .places import is_s3, open_place, split_s3

    found: list[str] = []
    for item in inputs:
        if is_s3(item):
            bucket, _ = split_s3(item)
            place = open_place(item, endpoint_url)
            keys = _tables(place.objects.keys(place.prefix))
            found += [f"s3://{bucket}/{key}" for key in keys]
            continue
        path = Path(item)
        if path.is_dir():
            found += _tables([str(child) for child in path.iterdir() if child.is_file()])
        elif path.is_file():
            found.append(str(path))
        else:
            raise ModelStoreError(f"{item}: no such file or folder")
    if not found:
        raise ModelStoreError("no CSV or Parquet files among the inputs")
    return found


def _s3_errors() -> tuple[type[Exception], ...]:
    from warden_algos.modelstore.cli import _s3_errors as errors

    return errors()


def run_batch(args: argparse.Namespace) -> int:
    import orjson

    from warden_algos.extras import MissingExtra, require
    from warden_algos.interfaces.errors import WardenError
    from warden_algos.interfaces.trainable import TrainableDetector
    from warden_algos.modelstore.cli import _algorithm, _json_object
    from warden_algos.modelstore.records import ModelStoreError
    from warden_algos.modelstore.tables import value_columns
    from warden_algos.tracking.client import TrackingError

    from .job import JobSpec, StoreSpec
    from .places import is_s3, open_place

    refusals: tuple[type[Exception], ...] = (
        MissingExtra,
        ModelStoreError,
        WardenError,
        TrackingError,
    )
    refusals += _s3_errors()
    try:
        require("batch", what="warden-algos batch")
        algorithm = _algorithm(args.algorithm, args.params)
        trainable = isinstance(algorithm, TrainableDetector)
        if not trainable and (args.action == "fit" or getattr(args, "since", False)):
            raise ModelStoreError(
                f"{algorithm.name} is not trainable: batch {args.action}"
                f"{' --since' if args.action == 'detect' else ''} needs a model to store "
                "(`warden-algos list` marks the trainable algorithms)"
            )
        if args.workers is not None and args.workers < 1:
            raise ModelStoreError("--workers must be at least 1")
        if args.files_per_task is not None and args.files_per_task < 1:
            raise ModelStoreError("--files-per-task must be at least 1")
        values = tuple(value_columns(args.value_column, args.value_columns))
        files = _files(args.inputs, args.endpoint_url)
        store = StoreSpec(
            store_dir=None if args.store_dir is None else str(args.store_dir.resolve()),
            bucket=args.bucket,
            prefix=args.prefix,
            endpoint_url=args.endpoint_url,
            config=None if args.config is None else str(args.config.resolve()),
        )
        opened = None
        if trainable:  # refuse a store that cannot be opened before starting a cluster
            from .task import _store

            opened = _store(store)
        job = JobSpec(
            mode=args.action,
            algorithm=algorithm.name,
            params=_json_object(args.params, "--params"),
            store=store,
            output=args.output if is_s3(args.output) else str(Path(args.output).resolve()),
            endpoint_url=args.endpoint_url,
            output_format=args.format,
            timestamp_column=args.timestamp_column,
            value_columns=values,
            key_columns=tuple(
                name.strip() for name in (args.key_columns or "").split(",") if name.strip()
            ),
            since=getattr(args, "since", False),
            why=args.why or f"batch {args.action}",
        )
        tracked = _start_run(args, algorithm, opened, files)  # before the cluster, too
        if tracked is not None:  # every push names the run
            from warden_algos.tracking.fitting import with_run

            job = job._replace(why=with_run(job.why, tracked[1]))
    except refusals as error:
        print(f"warden-algos batch {args.action}: error: {error}", file=sys.stderr)
        return 2
    from .driver import run

    workers = None if args.scheduler is not None else args.workers or os.cpu_count() or 1
    try:
        summary, outcomes = run(
            files,
            job,
            workers=workers,
            scheduler=args.scheduler,
            progress=not args.no_progress,
            files_per_task=args.files_per_task,
        )
    except BaseException:
        if tracked is not None:
            tracked[0].finish(tracked[1], ok=False)
        raise
    document = {"mode": args.action, "algorithm": algorithm.name, **summary.as_json()}
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    output = open_place(job.output, job.endpoint_url)
    output.objects.put(output.key(f"summary-{args.action}.json"), text)
    sys.stdout.buffer.write(text)
    sys.stdout.flush()
    code = 1 if summary.series_failed else 0
    if tracked is not None:
        from warden_algos.tracking.fitting import log_batch_fit

        tracker, run_id = tracked
        try:
            log_batch_fit(
                tracker, run_id, summary=summary.as_json(), outcomes=outcomes, ok=code == 0
            )
        except TrackingError as error:
            print(f"warden-algos batch {args.action}: error: {error}", file=sys.stderr)
            return 1
        tracker.announce(run_id, f"batch {args.action} {algorithm.name}")
    return code


def _start_run(
    args: argparse.Namespace, algorithm: Any, store: Any, files: list[str]
) -> tuple[Any, str] | None:
    """With ``--mlflow`` (``batch fit``): the tracking store, proven reachable, and the job's
    run, made before the cluster starts so that every push can name it."""
    if getattr(args, "mlflow", None) is None:
        return None
    import time

    from warden_algos.models_folder import params_id
    from warden_algos.tracking.client import Tracker
    from warden_algos.tracking.fitting import start_fit, store_uri

    tracker = Tracker.connect(args.mlflow, args.mlflow_experiment)
    run_id = start_fit(
        tracker,
        command=f"batch {args.action}",
        algorithm=algorithm.name,
        params=algorithm.get_params(),
        params_id=params_id(algorithm.get_params()),
        store=store_uri(store),
        inputs=list(args.inputs),
        started=time.time(),
    )
    tracker.log(run_id, params={"files": len(files)})
    return tracker, run_id

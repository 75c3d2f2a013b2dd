"""``--mlflow [URI]`` and ``--mlflow-experiment NAME``: the same two options on every command
that can log a run. Argparse only: parsers are built at start-up, even for a one-shot ``run``."""

from __future__ import annotations

import argparse

#: ``--mlflow`` without a value: MLFLOW_TRACKING_URI if set, else the local folder ./mlruns.
DEFAULT = ""
DEFAULT_EXPERIMENT = "warden-algos"


def add_mlflow_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--mlflow",
        nargs="?",
        const=DEFAULT,
        default=None,
        metavar="TRACKING_URI",
        help="log this run to MLflow (the 'tracking' extra): a tracking server "
        "(http://host:5000), a database (sqlite:///file.db) or a local folder (a path: its "
        "mlflow.db and artifacts/); without a value MLFLOW_TRACKING_URI, else ./mlruns",
    )
    parser.add_argument(
        "--mlflow-experiment",
        default=DEFAULT_EXPERIMENT,
        metavar="NAME",
        help=f"the MLflow experiment, made if missing (default: {DEFAULT_EXPERIMENT})",
    )

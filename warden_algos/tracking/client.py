"""The MLflow tracking store a command logs to: opened (and proven reachable) before the
expensive work, then written run by run; every failure is one line (:class:`TrackingError`).

Where runs go (``--mlflow [URI]``):

- nothing: ``MLFLOW_TRACKING_URI`` if set, else the local folder ``./mlruns``;
- a path (no scheme): a local folder holding ``mlflow.db``, a SQLite store (MLflow's own default
  backend: its file store is in maintenance and refuses to open since 3.x) and ``artifacts/``;
  nothing needs to run, and ``mlflow ui --backend-store-uri sqlite:///PATH/mlflow.db`` browses it;
- anything else (``http://host:5000``, ``sqlite:///x.db``, ``databricks``): MLflow's as given.

MLflow writes to stdout (a "View run" line when a run on a server ends); every call here runs
with stdout sent to stderr, since stdout is the commands' own output. Reaching a server is tried
once, without MLflow's retries (seven, with back-off: minutes of
silence before an error), so a wrong address fails in seconds; later calls retry as MLflow
does. MLflow's own logging is turned down to warnings, on stderr, as everything here is.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlparse

import orjson

__all__ = ["Tracker", "TrackingError", "resolve"]

_T = TypeVar("_T")
#: MLflow's limits (mlflow.utils.validation): per log_batch call, and a param's length.
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
MAX_PARAM_LENGTH = 6000
#: How long the first request may take before the store counts as unreachable.
CONNECT_TIMEOUT_S = 10


class TrackingError(Exception):
    """The tracking store cannot be used: one line, that names the store and the reason."""


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    if "timed out" in text.lower():
        return "timed out"
    return text[:400]


def resolve(given: str) -> tuple[str, Path | None]:
    """The tracking URI ``--mlflow given`` means, and the local folder it lives in (None for a
    server or any URI MLflow takes as it is)."""
    text = given or os.environ.get("MLFLOW_TRACKING_URI", "") or "mlruns"
    if urlparse(text).scheme or text.startswith("databricks"):
        return text, None
    folder = Path(text).expanduser().resolve()
    return f"sqlite:///{folder / 'mlflow.db'}", folder


@contextmanager
def _one_try() -> Iterator[None]:
    """MLflow's HTTP calls without retries and with a short timeout, for the first contact."""
    saved = {name: os.environ.get(name) for name in _ONE_TRY}
    os.environ.update(_ONE_TRY)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_ONE_TRY = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(CONNECT_TIMEOUT_S),
}


def _quiet() -> None:
    """MLflow and Alembic (its database migrations) log at INFO by default: warnings only; and
    MLflow's two "View run/experiment" lines per run (on a server) are not printed: the command
    says once where its run is (:meth:`Tracker.announce`), however many child runs a grid has."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _text(value: Any) -> str:
    """A param or tag value as MLflow stores it: strings as they are, the rest as JSON."""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text[:MAX_PARAM_LENGTH]


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Tracker:
    """One tracking store and experiment; each method one MLflow call (or a few), every failure
    a :class:`TrackingError`."""

    def __init__(self, client: Any, uri: str, folder: Path | None, experiment_id: str) -> None:
        self.client = client
        self.uri = uri
        self.folder = folder
        self.experiment_id = experiment_id

    @classmethod
    def connect(cls, given: str, experiment: str) -> Tracker:
        """Open the store and find or make ``experiment``: the proof that it answers."""
        from warden_algos.extras import require

        require("tracking", what="--mlflow")
        uri, folder = resolve(given)
        where = f"MLflow tracking at {uri}"
        try:
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
            from mlflow.tracking import MlflowClient

            _quiet()  # after the import, which sets MLflow's loggers to INFO
            with _one_try(), redirect_stdout(sys.stderr):
                client = MlflowClient(tracking_uri=uri)
                found = client.get_experiment_by_name(experiment)
                if found is not None:
                    experiment_id = found.experiment_id
                else:
                    location = None if folder is None else (folder / "artifacts").as_uri()
                    experiment_id = client.create_experiment(experiment, artifact_location=location)
        except Exception as error:  # MLflow raises its own, requests', sqlite's, OSError
            raise TrackingError(f"cannot use {where}: {_one_line(error)}") from None
        return cls(client, uri, folder, experiment_id)

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        try:
            with redirect_stdout(sys.stderr):  # MLflow prints run URLs to stdout
                return call()
        except Exception as error:
            raise TrackingError(
                f"MLflow tracking at {self.uri}: {what}: {_one_line(error)}"
            ) from None

    # runs ----------------------------------------------------------------------------------
    def start(
        self,
        name: str,
        tags: Mapping[str, Any],
        *,
        parent: str | None = None,
        started: float | None = None,
    ) -> str:
        """A new run (a child of ``parent``), started at ``started`` (epoch seconds) or now."""
        all_tags = {key: _text(value) for key, value in tags.items()}
        if parent is not None:
            all_tags["mlflow.parentRunId"] = parent
        start_ms = int(1000 * (started if started is not None else time.time()))
        run = self._call(
            "creating a run",
            lambda: self.client.create_run(
                self.experiment_id, start_time=start_ms, tags=all_tags, run_name=name
            ),
        )
        return str(run.info.run_id)

    def finish(self, run_id: str, *, ok: bool) -> None:
        status = "FINISHED" if ok else "FAILED"
        self._call("ending the run", lambda: self.client.set_terminated(run_id, status=status))

    # what a run holds -----------------------------------------------------------------------
    def log(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float | int | None] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Params, metrics (None and non-finite values left out) and tags, in batches."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        param_list = [Param(key, _text(value)) for key, value in (params or {}).items()]
        tag_list = [RunTag(key, _text(value)) for key, value in (tags or {}).items()]
        metric_list = [
            Metric(key, float(value), now, 0)
            for key, value in (metrics or {}).items()
            if value is not None and math.isfinite(value)
        ]

        def send(what: str, **batch: Sequence[Any]) -> None:
            self._call(f"logging {what}", lambda: self.client.log_batch(run_id, **batch))

        for params_part in _chunks(param_list, PARAMS_PER_BATCH):
            send("params", params=params_part)
        for tags_part in _chunks(tag_list, PARAMS_PER_BATCH):
            send("tags", tags=tags_part)
        for metrics_part in _chunks(metric_list, METRICS_PER_BATCH):
            send("metrics", metrics=metrics_part)

    def artifact(self, run_id: str, path: Path, folder: str | None = None) -> None:
        """A file, or every file of a folder, under ``folder`` of the run's artifacts."""
        if path.is_dir():
            self._call(
                f"uploading {path}",
                lambda: self.client.log_artifacts(run_id, str(path), artifact_path=folder),
            )
        else:
            self._call(
                f"uploading {path}",
                lambda: self.client.log_artifact(run_id, str(path), artifact_path=folder),
            )

    def document(self, run_id: str, document: Mapping[str, Any], name: str) -> None:
        """A JSON document as the artifact ``name``."""
        self._call(f"uploading {name}", lambda: self.client.log_dict(run_id, dict(document), name))

    def table(self, run_id: str, rows: Sequence[Mapping[str, Any]], name: str) -> None:
        """Rows as a table artifact (``name``, JSON) that the MLflow UI shows and compares;
        values that are not numbers or text become JSON text."""
        import pandas as pd

        def cell(value: Any) -> Any:
            if value is None or isinstance(value, (str, int, float, bool)):
                return value
            return orjson.dumps(value, default=str).decode()

        frame = pd.DataFrame([{key: cell(v) for key, v in row.items()} for row in rows])
        self._call(
            f"uploading {name}",
            lambda: self.client.log_table(run_id, data=frame, artifact_file=name),
        )

    # where to look --------------------------------------------------------------------------
    def url(self, run_id: str) -> str:
        """Where a person finds the run: its page on a server, else the store and the run."""
        if self.uri.startswith(("http://", "https://")):
            return f"{self.uri.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}"
        return f"{self.uri} (experiment {self.experiment_id}, run {run_id})"

    def announce(self, run_id: str, what: str, stream: IO[str] | None = None) -> None:
        """One line on stderr: the run and where it is."""
        print(
            f"mlflow: {what} logged as run {run_id}: {self.url(run_id)}", file=stream or sys.stderr
        )
        if self.folder is not None:
            print(
                f"mlflow: browse with: mlflow ui --backend-store-uri {self.uri}",
                file=stream or sys.stderr,
            )

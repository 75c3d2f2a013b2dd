"""The driver of a batch run: the Dask cluster, one task per input file, progress and summary.

``--workers N`` starts an embedded ``LocalCluster`` of N single-threaded worker processes (the
algorithms are CPU work in Python: processes, not threads, use the cores); ``--scheduler
tcp://HOST:PORT`` uses a running cluster whose workers have the same warden-algos installed. The
driver holds the list of file names and the outcomes, never a series: workers read their files.
A worker that dies mid-task loses nothing but time: Dask runs the task again on another worker,
and since results are written atomically under names of the input's content, the second run
writes the same files, once each.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from .job import FileOutcome, JobSpec


class Summary(NamedTuple):
    files: int
    series_ok: int
    series_failed: int
    series_skipped: int  # done by an earlier run with the same input bytes, job and SDK
    anomalies: int
    wall_s: float
    #: Workers there at the start and gone at the end (died, killed, or left the cluster):
    #: their tasks were run again elsewhere.
    workers_lost: int
    failures: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return self._asdict()


@contextmanager
def cluster(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """A Dask client: on ``scheduler``, or on a new LocalCluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address="127.0.0.1:0",
            scheduler_port=0,
            host="127.0.0.1",
            silence_logs=40,  # logging.ERROR: progress goes to stderr, nothing to stdout
        ) as local,
        Client(local) as client,
    ):
        yield client


def run(
    files: Sequence[str],
    job: JobSpec,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
) -> tuple[Summary, list[FileOutcome]]:
    from distributed import as_completed
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .task import run_file

    started = time.perf_counter()
    console = Console(file=sys.stderr)
    outcomes: list[FileOutcome] = []
    ok = failed = skipped = anomalies = 0
    with cluster(workers, scheduler) as client:
        console.print(f"dashboard: {client.dashboard_link}")
        at_start = set(client.scheduler_info()["workers"])
        futures = client.map(run_file, list(files), job=job, pure=False, retries=2)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, disable=not progress) as bar:
            task = bar.add_task("files", total=len(futures))
            for future in as_completed(futures):
                outcome: FileOutcome = future.result()
                outcomes.append(outcome)
                for one in outcome.series:
                    if one.status == "failed":
                        failed += 1
                    elif outcome.skipped:
                        skipped += 1
                    else:
                        ok += 1
                    anomalies += one.anomalies
                bar.update(
                    task,
                    advance=1,
                    description=f"series ok {ok}, failed {failed}, skipped {skipped}",
                )
                future.release()
        lost = len(at_start - set(client.scheduler_info()["workers"]))
    failures = [
        {"file": outcome.file, "key": one.key, "code": one.code, "message": one.message}
        for outcome in sorted(outcomes, key=lambda item: item.file)
        for one in outcome.series
        if one.status == "failed"
    ]
    summary = Summary(
        files=len(files),
        series_ok=ok,
        series_failed=failed,
        series_skipped=skipped,
        anomalies=anomalies,
        wall_s=round(time.perf_counter() - started, 3),
        workers_lost=lost,
        failures=failures,
    )
    return summary, outcomes

"""The driver of a batch run: the Dask cluster, tasks of input groups, progress and summary.

``--workers N`` starts an embedded ``LocalCluster`` of N single-threaded worker processes (the
algorithms are CPU work in Python: processes, not threads, use the cores); ``--scheduler
tcp://HOST:PORT`` uses a running cluster whose workers have the same warden-algos installed. The
driver holds the list of file names and the outcomes, never a series: workers read their files
(and, for a long table of several files, first each file's keys, so that files sharing a series
are one group: ``groups``).
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
    #: Peak resident memory (MiB) of the driver and of each worker still there at the end.
    peak_rss_mib: dict[str, Any]
    failures: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return self._asdict()


#: A task holds at most this many files, and each worker gets about ``TASKS_PER_WORKER`` tasks
#: (enough to balance files of uneven cost and to lose little when a worker dies).
MAX_FILES_PER_TASK = 64
TASKS_PER_WORKER = 16


def chunk_size(files: int, workers: int) -> int:
    """Files per task: one Dask task per file costs a scheduling and a result round trip each
    (about 7 ms a file measured on 2 vCPUs, against 25 ms of work for a small series), so files
    go in groups; a group's files still each get their own results and record."""
    per_worker = -(-files // (max(1, workers) * TASKS_PER_WORKER))
    return max(1, min(MAX_FILES_PER_TASK, per_worker))


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


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


def plan(
    files: Sequence[str], job: JobSpec, client: Any, workers: int, console: Any
) -> list[list[str]]:
    """The groups of inputs that hold whole series (see ``groups``): by name, or, for a long
    table in several files, by the keys the workers find in each file."""
    from . import groups
    from .task import keys_of

    if not job.key_columns:
        found = groups.by_name(files)
    elif len(files) == 1:
        found = [list(files)]
    else:
        size = chunk_size(len(files), workers)
        chunks = [list(files[i : i + size]) for i in range(0, len(files), size)]
        keys: list[Any] = []
        for digests in client.gather(client.map(keys_of, chunks, job=job, pure=False)):
            keys += digests
        found = groups.by_keys(files, keys)
    largest = max(len(group) for group in found)
    if largest > 1:
        console.print(
            f"{len(files)} files hold {len(found)} groups of whole series (the largest "
            f"{largest} files, read by one task)"
        )
    if workers > 1 and len(found) == 1 and len(files) > 1:
        console.print(
            "[yellow]every file shares series with the others: one task reads them all, so "
            "the run does not use more than one worker. A table partitioned by series key "
            "(not by time) runs in parallel.[/yellow]"
        )
    return found


def run(
    files: Sequence[str],
    job: JobSpec,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    files_per_task: int | None = None,
) -> tuple[Summary, list[FileOutcome]]:
    from distributed import as_completed
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .groups import tasks
    from .task import run_files

    started = time.perf_counter()
    console = Console(file=sys.stderr)
    outcomes: list[FileOutcome] = []
    ok = failed = skipped = anomalies = 0
    with cluster(workers, scheduler) as client:
        console.print(f"dashboard: {client.dashboard_link}")
        at_start = set(client.scheduler_info()["workers"])
        found = plan(files, job, client, len(at_start), console)
        size = files_per_task or chunk_size(len(files), len(at_start))
        futures = client.map(run_files, tasks(found, size), job=job, pure=False, retries=2)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, disable=not progress) as bar:
            task = bar.add_task("files", total=len(files))
            for future in as_completed(futures):
                done: list[FileOutcome] = future.result()
                outcomes += done
                for outcome in done:
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
                    advance=sum(outcome.inputs for outcome in done),
                    description=f"series ok {ok}, failed {failed}, skipped {skipped}",
                )
                future.release()
        lost = len(at_start - set(client.scheduler_info()["workers"]))
        workers_peak = client.run(peak_rss_mib)
    failures = [
        {
            "file": outcome.file,
            "together_with": list(outcome.together_with),
            "key": one.key,
            "code": one.code,
            "message": one.message,
            **({} if one.column is None else {"column": one.column}),
        }
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
        peak_rss_mib={
            "driver": peak_rss_mib(),
            "workers": sorted(round(mib, 1) for mib in workers_peak.values()),
        },
        failures=failures,
    )
    return summary, outcomes

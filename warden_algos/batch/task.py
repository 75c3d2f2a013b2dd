"""One group of input files on a worker: read it, fit or score each of its series, write the
results.

A group is the files that hold parts of the same series (``groups``; most often one file). Its
series are read only here, never by the driver. Each series goes through the path a request
takes (``run_fit``, ``run_detect_next``, ``run_detect``, or their matrix twins for a series of
several value columns that the algorithm takes whole), so it is checked as one sent on the wire
and fails with the same codes; one series' failure is its outcome alone. A series of several
value columns that the algorithm scores one at a time is one model per column
(``modelstore.training.units``), each with its own outcome.
"""

from __future__ import annotations

import functools
import hashlib
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from .job import FileOutcome, JobSpec, SeriesOutcome, StoreSpec, run_key
from .outputs import (
    Detections,
    anomalies_key,
    anomaly_columns,
    done_key,
    read_done,
    write_anomalies,
    write_done,
)
from .places import Place, is_s3, open_place, split_s3

STORE_ERROR = "MODEL_STORE_ERROR"


@functools.lru_cache(maxsize=8)
def _algorithm(name: str, params_json: bytes) -> Any:
    """The registered detector with these params, once per worker process."""
    from warden_algos.registry import Registry

    algorithm_class = Registry.discover().load_for("detect", name)
    return algorithm_class(algorithm_class.validate_params(orjson.loads(params_json)))


@functools.lru_cache(maxsize=4)
def _store(spec: StoreSpec) -> Any:
    from warden_algos.modelstore.cli import open_store

    args = SimpleNamespace(
        store_dir=None if spec.store_dir is None else Path(spec.store_dir),
        bucket=spec.bucket,
        prefix=spec.prefix,
        endpoint_url=spec.endpoint_url,
        config=None if spec.config is None else Path(spec.config),
        jobs=4,
        action="fit",
    )
    return open_store(args)  # type: ignore[arg-type]


#: An input object larger than this is refused (S3 inputs are read into memory, then parsed).
MAX_INPUT_BYTES = 2 << 30


@functools.lru_cache(maxsize=4)
def _place(url: str, endpoint_url: str | None) -> Place:
    return open_place(url, endpoint_url)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _local_copy(source: str, endpoint_url: str | None) -> Iterator[tuple[Path, str]]:
    """A local path to read ``source`` from, and the sha256 of its bytes: the file itself, or
    an S3 object's bytes in a temporary folder (under the object's own name, which the
    single-series path's messages quote)."""
    if not is_s3(source):
        path = Path(source)
        yield path, _file_sha256(path)
        return
    from warden_algos.modelstore.objects import TooLarge
    from warden_algos.modelstore.records import ModelStoreError

    bucket, key = split_s3(source)
    place = _place(f"s3://{bucket}", endpoint_url)
    try:
        found = place.objects.get(key, limit=MAX_INPUT_BYTES)
    except TooLarge:
        raise ModelStoreError(f"{source} is over {MAX_INPUT_BYTES >> 20} MiB: refused") from None
    if found is None:
        raise ModelStoreError(f"{source} is gone (removed since it was listed)")
    parts = key.split("/")
    folder = parts[-2] if len(parts) > 1 and parts[-2] else "input"
    with tempfile.TemporaryDirectory(prefix="warden-batch-") as scratch:
        # under its own folder's name too: a message about one of several same-named objects
        # (day folders of one sensor's file) names it as ``day=2/web-3.csv``
        path = Path(scratch) / folder / (parts[-1] or "input")
        path.parent.mkdir()
        path.write_bytes(found[0])
        yield path, hashlib.sha256(found[0]).hexdigest()


@contextmanager
def _local_copies(sources: Sequence[str], endpoint_url: str | None
                  ) -> Iterator[list[tuple[Path, str]]]:  # fmt: skip
    with ExitStack() as stack:
        yield [stack.enter_context(_local_copy(source, endpoint_url)) for source in sources]


def _group_sha256(file_sha256s: Sequence[str]) -> str:
    """The content of a group: its one file's sha256 (so a file's results keep their name
    whether it is grouped or not), or a hash of its files' sorted hashes."""
    if len(file_sha256s) == 1:
        return file_sha256s[0]
    return hashlib.sha256("group\n".join(sorted(file_sha256s)).encode()).hexdigest()


def source_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1]


def keys_of(sources: list[str], job: JobSpec) -> list[list[bytes] | None]:
    """One Dask task of the planning pass: per input, the digests of the series keys its rows
    hold (its key columns only), or None when it cannot be read (it is then a group of its
    own and fails with its own message when processed)."""
    from warden_algos.modelstore.records import ModelStoreError
    from warden_algos.modelstore.tables import read_keys

    from .groups import key_digest

    found: list[list[bytes] | None] = []
    for source in sources:
        try:
            with _local_copy(source, job.endpoint_url) as (path, _):
                found.append([key_digest(key) for key in read_keys(path, job.key_columns)])
        except (OSError, ModelStoreError):
            found.append(None)
    return found


def run_files(groups: list[list[str]], job: JobSpec) -> list[FileOutcome]:
    """One Dask task: some groups of inputs, each done (or found done) on its own."""
    return [run_group(group, job) for group in groups]


def run_file(source: str, job: JobSpec) -> FileOutcome:
    """The outcome of one input file that is a group of its own."""
    return run_group([source], job)


def run_group(sources: Sequence[str], job: JobSpec) -> FileOutcome:
    """The outcome of a group of inputs (files, or s3:// objects) holding whole series: done
    before (its record), or done now. Named after its first input."""
    from warden_algos import __version__
    from warden_algos.modelstore.records import ModelStoreError

    output = _place(job.output, job.endpoint_url)
    names = [source_name(source) for source in sources]
    name, others = names[0], tuple(names[1:])
    record_name = name if not others else f"{name}+{len(others)}"
    try:
        with _local_copies(sources, job.endpoint_url) as copies:
            key = run_key(_group_sha256([sha for _, sha in copies]), job.fingerprint(__version__))
            done = done_key(job.mode, record_name, key)
            earlier = read_done(output, done)
            if earlier is not None:
                return earlier
            outcome = _process([path for path, _ in copies], record_name, key, job, output)
    except (OSError, ModelStoreError) as error:  # an input cannot be read at all
        failed = SeriesOutcome(name, "failed", "INVALID_INPUT", str(error))
        return FileOutcome(name, None, False, [failed], str(error), together_with=others)
    outcome = outcome._replace(file=name, together_with=others)
    write_done(output, done, outcome)
    return outcome


def _process(paths: list[Path], name: str, key: str, job: JobSpec, output: Place
             ) -> FileOutcome:  # fmt: skip
    from warden_algos.modelstore.records import ModelStoreError
    from warden_algos.modelstore.tables import read_series

    try:
        series = read_series(
            paths,
            timestamp_column=job.timestamp_column,
            value_column=list(job.value_columns),
            key_columns=list(job.key_columns),
        )
    except ModelStoreError as error:  # unreadable file, a column missing
        failed = SeriesOutcome(name, "failed", "INVALID_INPUT", str(error))
        return FileOutcome(name, key, False, [failed], str(error))
    algorithm = _algorithm(job.algorithm, orjson.dumps(job.params, option=orjson.OPT_SORT_KEYS))
    rows: dict[str, list[Any]] = {column: [] for column in anomaly_columns(job.value_columns)}
    outcomes = [item for one in series for item in _one(algorithm, one, job, rows, key)]
    anomalies_file = None
    if job.mode == "detect":
        anomalies_file = anomalies_key(name, key, job.output_format)
        write_anomalies(output, anomalies_file, rows, job.output_format)
    return FileOutcome(name, key, False, outcomes, None, anomalies_file)


def _one(
    algorithm: Any, one: Any, job: JobSpec, rows: dict[str, list[Any]], key: str
) -> list[SeriesOutcome]:
    """The outcomes of one series: of its one model, or of each column's (``units``)."""
    from warden_algos.interfaces.errors import WardenError
    from warden_algos.modelstore.records import ModelStoreError
    from warden_algos.modelstore.training import units

    if one.problem is not None:
        return [SeriesOutcome(one.key, "failed", "INVALID_INPUT", one.problem)]
    found = []
    scored = Detections(one.key, one.columns)
    for unit in units(algorithm, one):
        try:
            if job.mode == "fit":
                outcome = _fit(algorithm, unit, job)
            else:
                outcome = _detect(algorithm, unit, job, scored, key)
        except WardenError as error:
            outcome = SeriesOutcome(unit.key, "failed", error.code.value, str(error))
        except ModelStoreError as error:
            outcome = SeriesOutcome(unit.key, "failed", STORE_ERROR, str(error))
        except Exception as error:  # the algorithm's own failure, as a request reports it
            message = f"{algorithm.name} raised {type(error).__name__}: {error}"
            outcome = SeriesOutcome(unit.key, "failed", "ALGORITHM_FAILED", message)
        found.append(outcome._replace(column=unit.column))
    scored.into(rows)
    return found


def _fit(algorithm: Any, unit: Any, job: JobSpec) -> SeriesOutcome:
    from warden_algos.modelstore.training import fit_unit

    fitted = fit_unit(algorithm, unit)
    pushed = _store(job.store).push(
        fitted.state,
        unit.key,
        why=job.why,
        algorithm=algorithm.name,
        params=algorithm.get_params(),
    )
    return SeriesOutcome(
        unit.key, "ok", points=fitted.info.seen.points, sha256=pushed.pointer.sha256
    )


def _detect(algorithm: Any, unit: Any, job: JobSpec, scored: Detections, key: str
            ) -> SeriesOutcome:  # fmt: skip
    """Score one series (or one column of it). With ``since`` the model moves on past the
    points scored, its history naming this task's run key: a task cut short after that move and
    done again starts from the model before it (the move's ``from_sha256``), so it scores the
    same points to the same results and its push finds the same state already current."""
    from warden_algos.interfaces.errors import StateNotFound
    from warden_algos.interfaces.trainable import TrainableDetector
    from warden_algos.models_folder import params_id
    from warden_algos.modelstore.store import SeriesId

    pushed = None
    if not isinstance(algorithm, TrainableDetector):
        result = _scored(algorithm, unit, None, False)
    else:
        store = _store(job.store)
        series = SeriesId(algorithm.name, params_id(algorithm.get_params()), unit.key)
        pointer = store.pointer(series)
        if pointer is None:
            raise StateNotFound(
                f"no stored {algorithm.name} model for series {unit.key!r} with these params: "
                "batch fit it first",
                field="model",
            )
        mark = f"(run {key})"
        start = pointer.sha256
        if job.since and pointer.why.endswith(mark) and pointer.from_sha256 is not None:
            start = pointer.from_sha256  # an earlier attempt of this very task moved it
        blob, info = store.fetch(series, start)
        unit = unit.later_than(info.seen_end)  # the model has seen the rest
        if unit.timestamps.shape[0] == 0:
            return SeriesOutcome(unit.key, "ok", points=0, sha256=start)
        result, after = _scored(algorithm, unit, blob, job.since)
        if after is not None:
            pushed = store.push(after.state, unit.key, why=f"{job.why} {mark}").pointer.sha256
    found = scored.add(unit, result)
    return SeriesOutcome(
        unit.key, "ok", points=int(unit.timestamps.shape[0]), anomalies=found, sha256=pushed
    )


def _scored(algorithm: Any, unit: Any, blob: bytes | None, since: bool) -> Any:
    """``unit`` scored through the path a request takes: statelessly (``blob`` None: the
    result) or with its model (the result and the state after it, when ``since``)."""
    from warden_algos.interfaces import run_detect
    from warden_algos.interfaces.run_matrix import run_detect_matrix, run_detect_matrix_next
    from warden_algos.interfaces.run_state import run_detect_next

    times, values, dimensions = unit.timestamps, unit.values, unit.dimensions
    if blob is None:
        if unit.columns:
            return run_detect_matrix(algorithm, times, values, unit.columns, dimensions)
        return run_detect(algorithm, times, values, dimensions)
    if unit.columns:
        return run_detect_matrix_next(
            algorithm, times, values, unit.columns, blob, dimensions, return_state=since
        )
    return run_detect_next(algorithm, times, values, blob, dimensions, return_state=since)

"""``warden-algos batch fit|detect`` on real Dask clusters: an embedded LocalCluster of two worker
processes, and a ``dask scheduler`` with two ``dask worker`` processes started here on loopback.

Every run is the real command (a subprocess); its results are checked against the single-series
path in this process (``run_fit``/``run_detect_next``/``run_detect`` on the same rows), so a
batch answer is the answer a request gets, series by series.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.algorithms.spectral_residual import SpectralResidual
from warden_algos.interfaces import run_detect
from warden_algos.interfaces.run_state import run_detect_next
from warden_algos.models_folder import params_id
from warden_algos.modelstore.local import FolderObjects
from warden_algos.modelstore.store import ModelStore, SeriesId

from .conftest import cli

T0 = 1_700_000_000
DAY = 1440
SENSORS = 12
PARAMS = {"window": 60}


def sensor(key: int) -> tuple[np.ndarray, np.ndarray]:
    """Two days at one minute: a daily cycle, noise, a spike on the second day, gaps."""
    rng = np.random.default_rng(key)
    minutes = np.arange(2 * DAY)
    values = 50 + 5 * np.sin(2 * np.pi * minutes / DAY) + rng.normal(0, 1, minutes.shape[0])
    values[DAY + 300 + key * 7] += 25
    values[rng.choice(minutes.shape[0], 20, replace=False)] = np.nan
    return T0 + 60 * minutes, values


def write_csv(path: Path, times: np.ndarray, values: np.ndarray) -> None:
    lines = ["timestamp,value"]
    for t, v in zip(times.tolist(), values.tolist(), strict=True):
        lines.append(f"{t},{'' if np.isnan(v) else repr(v)}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """day1/ and day2/: one CSV per sensor, and on day 1 four bad files."""
    root = tmp_path_factory.mktemp("batch-days")
    for day in ("day1", "day2"):
        (root / day).mkdir()
    for key in range(SENSORS):
        times, values = sensor(key)
        write_csv(root / "day1" / f"sensor-{key:02d}.csv", times[:DAY], values[:DAY])
        write_csv(root / "day2" / f"sensor-{key:02d}.csv", times[DAY:], values[DAY:])
    (root / "day1" / "empty.csv").write_text("")
    (root / "day1" / "garbage.csv").write_text("timestamp,value\n1700000000,12\nnot a time,3\n")
    (root / "day1" / "backwards.csv").write_text(
        "timestamp,value\n1700000000,1\n1700000060,2\n1700000060,3\n"
    )
    nan_rows = "".join(f"{T0 + 60 * i},\n" for i in range(100))
    (root / "day1" / "all-nan.csv").write_text("timestamp,value\n" + nan_rows)
    return root


def batch(*args: str, timeout: float = 300) -> tuple[int, dict[str, Any], str]:
    done = cli("batch", *args, "--no-progress", timeout=timeout)
    stderr = done.stderr.decode(errors="replace")
    summary = orjson.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary, stderr


def store_of(folder: Path) -> ModelStore:
    return ModelStore(FolderObjects(folder))


def series_id(key: str) -> SeriesId:
    return SeriesId("ksigma", params_id(KSigma(PARAMS).get_params()), key)


def anomalies_of(output: Path, name: str) -> Any:
    (path,) = (output / "anomalies").glob(f"{name}_csv-*.parquet")
    return pq.read_table(path).to_pandas()


@pytest.fixture(scope="module")
def fitted(days: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("batch-run")
    store, output = root / "store", root / "out"
    code, summary, stderr = batch(
        "fit", str(days / "day1"), "--algorithm", "ksigma", "--params",
        orjson.dumps(PARAMS).decode(), "--store-dir", str(store), "--output", str(output),
        "--workers", "2",
    )  # fmt: skip
    return {"code": code, "summary": summary, "stderr": stderr, "store": store, "output": output}


def test_fit_pushes_a_model_per_series_and_records_each_bad_one(fitted: dict[str, Any]) -> None:
    """Twelve models pushed; three bad files are failures with the single-series path's codes
    and messages, and make the command exit 1 after everything else was done. An all-NaN series
    is what a fit request accepts (a model that has learnt nothing yet): pushed, as it would
    be."""
    summary = fitted["summary"]
    assert fitted["code"] == 1, fitted["stderr"][-2000:]
    assert "dashboard: http://127.0.0.1:" in fitted["stderr"]
    assert (summary["files"], summary["series_ok"], summary["series_failed"]) == (16, 13, 3)
    failures = {item["file"]: item for item in summary["failures"]}
    assert set(failures) == {"empty.csv", "garbage.csv", "backwards.csv"}
    assert all(item["code"] == "INVALID_INPUT" for item in failures.values()), failures
    assert "garbage.csv line 3" in failures["garbage.csv"]["message"]
    assert "increasing" in failures["backwards.csv"]["message"]
    store = store_of(fitted["store"])
    for key in range(SENSORS):
        pointer = store.pointer(series_id(f"sensor-{key:02d}"))
        assert pointer is not None and pointer.state.seen_points == DAY
        assert pointer.state.seen_end == T0 + 60 * (DAY - 1)
    all_nan = store.pointer(series_id("all-nan"))
    assert all_nan is not None and all_nan.state.seen_points == 100
    written = orjson.loads((fitted["output"] / "summary-fit.json").read_bytes())
    assert written == summary and summary["mode"] == "fit" and summary["algorithm"] == "ksigma"


@pytest.fixture(scope="module")
def scored(days: Path, fitted: dict[str, Any]) -> dict[str, Any]:
    store = store_of(fitted["store"])
    before = {key: store.pointer(series_id(f"sensor-{key:02d}")) for key in range(SENSORS)}
    code, summary, stderr = batch(
        "detect", str(days / "day2"), "--algorithm", "ksigma", "--params",
        orjson.dumps(PARAMS).decode(), "--store-dir", str(fitted["store"]), "--output",
        str(fitted["output"]), "--workers", "2", "--since",
    )  # fmt: skip
    return {**fitted, "code": code, "summary": summary, "stderr": stderr, "before": before}


def test_detect_scores_each_series_as_a_request_would(scored: dict[str, Any], days: Path) -> None:
    """Each sensor's anomalies are run_detect_next's over the day-2 rows with its stored model:
    same timestamps, scores and band; --since moved each model past them."""
    assert scored["code"] == 0, (scored["summary"], scored["stderr"][-2000:])
    summary = scored["summary"]
    counts = (summary["files"], summary["series_ok"], summary["series_failed"])
    assert counts == (SENSORS, SENSORS, 0)
    store = store_of(scored["store"])
    total = 0
    for key in range(SENSORS):
        name = f"sensor-{key:02d}"
        times, values = sensor(key)
        blob, _ = store.fetch(series_id(name), scored["before"][key].sha256)
        want, after = run_detect_next(KSigma(PARAMS), times[DAY:], values[DAY:], blob)
        got = anomalies_of(scored["output"], name)
        assert got["series_key"].tolist() == [name] * len(got)
        assert got["timestamp"].tolist() == want.timestamps.tolist()
        assert got["score"].tolist() == want.scores.tolist()
        index = np.searchsorted(times[DAY:], want.timestamps)
        assert want.expected is not None
        np.testing.assert_array_equal(got["expected"].to_numpy(), want.expected[index])
        assert T0 + 60 * (DAY + 300 + key * 7) in got["timestamp"].tolist()  # the spike
        pointer = store.pointer(series_id(name))
        assert pointer is not None and after is not None and pointer.sha256 == after.sha256
        assert pointer.state.seen_end == int(times[-1])
        assert re.search(r"\(run [0-9a-f]{16}\)$", pointer.why), pointer.why
        total += len(got)
    assert summary["anomalies"] == total


def detect_day2_again(scored: dict[str, Any], days: Path) -> tuple[int, dict[str, Any], str]:
    """The scored fixture's detect --since of day 2, run once more."""
    return batch(
        "detect", str(days / "day2"), "--algorithm", "ksigma", "--params",
        orjson.dumps(PARAMS).decode(), "--store-dir", str(scored["store"]), "--output",
        str(scored["output"]), "--workers", "2", "--since",
    )  # fmt: skip


def test_a_rerun_skips_every_file_and_writes_nothing(scored: dict[str, Any], days: Path) -> None:
    output = scored["output"]
    files = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in output.rglob("*")
             if path.is_file() and not path.name.startswith("summary")}  # fmt: skip
    code, summary, _ = detect_day2_again(scored, days)
    assert code == 0
    assert (summary["series_ok"], summary["series_skipped"]) == (0, SENSORS)
    assert summary["workers_lost"] == 0
    after = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in output.rglob("*")
             if path.is_file() and not path.name.startswith("summary")}  # fmt: skip
    assert after == files


def test_a_task_cut_short_after_moving_its_models_is_redone_alike(
    scored: dict[str, Any], days: Path
) -> None:
    """As if a worker died after pushing a file's new model but before its record: the re-run
    starts from the model before that push, writes the same anomalies, and the push it makes
    finds that state already current (the history does not grow)."""
    output, name = scored["output"], "sensor-03"
    (record,) = (output / "done" / "detect").glob(f"{name}_csv-*.json")
    (anomalies,) = (output / "anomalies").glob(f"{name}_csv-*.parquet")
    first = anomalies.read_bytes()
    record.unlink()
    anomalies.unlink()
    store = store_of(scored["store"])
    generation = store.pointer(series_id(name)).generation  # type: ignore[union-attr]
    code, summary, _ = detect_day2_again(scored, days)
    assert code == 0
    assert (summary["series_ok"], summary["series_skipped"]) == (1, SENSORS - 1)
    assert pq.read_table(anomalies).equals(pq.read_table(__import__("io").BytesIO(first)))
    assert store.pointer(series_id(name)).generation == generation  # type: ignore[union-attr]


def test_stateless_detect_long_table_csv_output(tmp_path: Path) -> None:
    """An algorithm that is not trainable scores whole series; a long table holds three series
    keyed by a column; CSV results equal run_detect's detections."""
    lines = ["host,timestamp,value"]
    expected = {}
    for host in ("a", "b", "c"):
        times, values = sensor(ord(host))
        values = np.nan_to_num(values, nan=50.0)
        lines += [f"{host},{t},{v!r}" for t, v in zip(times.tolist(), values.tolist(), strict=True)]
        expected[f"host={host}"] = run_detect(SpectralResidual(), times, values, [f"host={host}"])
    table = tmp_path / "long.csv"
    table.write_text("\n".join(lines) + "\n")
    code, summary, stderr = batch(
        "detect", str(table), "--algorithm", "spectral_residual", "--key-columns", "host",
        "--output", str(tmp_path / "out"), "--format", "csv", "--workers", "1",
    )  # fmt: skip
    assert code == 0, stderr[-2000:]
    assert summary["series_ok"] == 3
    import pandas as pd

    (path,) = (tmp_path / "out" / "anomalies").glob("long_csv-*.csv")
    got = pd.read_csv(path)
    for key, want in expected.items():
        rows = got[got["series_key"] == key]
        assert rows["timestamp"].tolist() == want.timestamps.tolist()
        np.testing.assert_allclose(rows["score"].to_numpy(), want.scores, rtol=1e-12)
    assert summary["anomalies"] == sum(len(w.timestamps) for w in expected.values()) > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--algorithm", "spectral_residual"], "spectral_residual is not trainable"),
        (["detect", "--algorithm", "spectral_residual", "--since"], "is not trainable"),
        (["detect", "--algorithm", "ksigma", "--params", '{"window": 0}'], "params.window"),
        (["detect", "--algorithm", "ksigma", "--workers", "0"], "--workers must be at least 1"),
        (["fit", "--algorithm", "ksigma", "--files-per-task", "0"], "--files-per-task must be"),
    ],
)
def test_refused_before_any_cluster_starts(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "in").mkdir()
    write_csv(tmp_path / "in" / "s.csv", *sensor(0))
    done = cli(
        "batch", args[0], str(tmp_path / "in"), *args[1:], "--output", str(tmp_path / "out"),
        "--store-dir", str(tmp_path / "store"),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr.decode(), done.stderr
    assert b"Traceback" not in done.stderr and done.stdout == b""
    assert "dashboard" not in done.stderr.decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture()
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on loopback."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    logs = [open(tmp_path / f"dask-{i}.log", "wb") for i in range(3)]  # noqa: SIM115
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address",
         "127.0.0.1:0"], stdout=logs[0], stderr=subprocess.STDOUT,
    )  # fmt: skip
    workers = [
        subprocess.Popen(
            [
                dask,
                "worker",
                address,
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / f"w{i}"),
            ],
            stdout=logs[i + 1],
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
        for process in [*workers, scheduler]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def test_on_a_running_scheduler(dask_cluster: str, days: Path, tmp_path: Path) -> None:
    """--scheduler: the same fit, on a cluster the command did not start, by both workers."""
    started = time.perf_counter()
    code, summary, stderr = batch(
        "fit", str(days / "day1"), "--algorithm", "ksigma", "--store-dir", str(tmp_path / "store"),
        "--output", str(tmp_path / "out"), "--scheduler", dask_cluster,
    )  # fmt: skip
    assert code == 1 and (summary["series_ok"], summary["series_failed"]) == (13, 3), stderr
    assert time.perf_counter() - started < 120
    store = store_of(tmp_path / "store")
    keys = {p.series_key for p in store.pointers() if not isinstance(p, tuple)}  # type: ignore[union-attr]
    assert keys == {f"sensor-{key:02d}" for key in range(SENSORS)} | {"all-nan"}


def worker_processes(parent: int) -> list[int]:
    """The LocalCluster's worker processes: children of the command that multiprocessing
    spawned (not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"spawn_main" in command and b"resource_tracker" not in command:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_mid_run_loses_nothing(tmp_path: Path, plugin_env: dict[str, str]) -> None:
    """SIGKILL to one of two workers while files are being scored (each takes 1.5 s): Dask runs
    its task again on a worker that lives, and every file ends with its results and its record,
    once each."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for key in range(8):
        write_csv(inputs / f"s{key}.csv", *sensor(key))
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "warden_algos", "batch", "detect", str(inputs), "--algorithm",
        "test_sleep", "--params", '{"seconds": 1.5}', "--output", str(output), "--workers", "2",
        "--no-progress",
    ]  # fmt: skip
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=plugin_env)
    deadline = time.monotonic() + 60
    while len(worker_processes(run.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = worker_processes(run.pid)
    assert len(workers) == 2, workers
    while not (output / "done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the first file is done: every worker is busy with the next ones
    os.kill(workers[0], 9)
    stdout, stderr = run.communicate(timeout=180)
    assert run.returncode == 0, stderr.decode()[-3000:]
    summary = orjson.loads(stdout)
    # a file the killed worker had finished but not reported is found done (its record) when
    # its task runs again: skipped, not written twice
    assert summary["series_ok"] + summary["series_skipped"] == 8 and summary["series_failed"] == 0
    records = sorted(p.name.split("_csv-")[0] for p in (output / "done" / "detect").glob("*.json"))
    results = sorted(p.name.split("_csv-")[0] for p in (output / "anomalies").glob("*.parquet"))
    assert records == results == [f"s{key}" for key in range(8)]
    assert summary["workers_lost"] == 1  # the kill landed during the run


def test_files_go_to_workers_in_groups_of_balanced_size() -> None:
    from warden_algos.batch.driver import MAX_FILES_PER_TASK, chunk_size

    assert chunk_size(8, 2) == 1  # few files: one a task, every worker busy
    assert chunk_size(2000, 2) == 63  # 32 tasks: 16 a worker
    assert chunk_size(10**6, 2) == MAX_FILES_PER_TASK
    assert chunk_size(5, 0) == 1

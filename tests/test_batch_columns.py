"""``batch fit|detect --value-columns``: several value columns per file make each series a matrix.

A multivariate algorithm (isolation_forest) fits one model per series on the matrix and its
detections carry each column's share; an algorithm of one series (drift) gets one model per
series and column, keyed ``<series>,column=<name>``, and its detections name their column. Real
runs of the command on a LocalCluster (and, for drift, on S3 inputs, store and output on the
session's moto_server), checked against the single-series paths in this process.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

from warden_algos.algorithms.drift import Drift
from warden_algos.algorithms.isolation_forest import IsolationForest
from warden_algos.batch.job import JobSpec, SeriesOutcome, StoreSpec
from warden_algos.batch.outputs import ANOMALY_COLUMNS, anomaly_columns
from warden_algos.interfaces.multivariate import MAX_COLUMNS
from warden_algos.interfaces.run_matrix import run_detect_matrix_next
from warden_algos.interfaces.state import decode_state
from warden_algos.models_folder import params_id
from warden_algos.modelstore.s3 import S3Objects
from warden_algos.modelstore.store import ModelStore, SeriesId

from .conftest import BUCKET, cli
from .test_batch import batch, store_of

T0 = 1_700_006_400
STEP = 300
DAY = 288
HISTORY = 2000
TODAY = 600
COLUMNS = ["inlet", "outlet", "pump"]
#: Machine -> (row, column) of a spike on the second part, where the daily cycle crosses zero.
SPIKES = {0: (2160, 0), 1: (2304, 1), 2: (2448, 2)}
#: This machine's outlet moves up by 3 (1.5 of its cycles' amplitude) from this row on.
DRIFTING, DRIFT_FROM = 3, HISTORY + 100
#: max_samples: trees deep enough to tell a spike from the cycle's dense edges.
FOREST = {"max_samples": 1024}


def machine(key: int) -> tuple[np.ndarray, np.ndarray]:
    """Three sensors of one machine following one daily cycle, small noise; a spike or a
    drift in one column of the later rows."""
    rng = np.random.default_rng(100 + key)
    n = HISTORY + TODAY
    times = T0 + STEP * np.arange(n, dtype=np.int64)
    cycle = np.sin(np.arange(n) * 2 * np.pi / DAY)
    matrix = np.column_stack([10 + cycle, 5 + 2 * cycle, 3 - cycle]) + rng.normal(0, 0.05, (n, 3))
    if key in SPIKES:
        row, column = SPIKES[key]
        matrix[row, column] += 20
    if key == DRIFTING:
        matrix[DRIFT_FROM:, 1] += 3
    return times, matrix


def table(times: np.ndarray, matrix: np.ndarray, columns: list[str] = COLUMNS) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": times, **dict(zip(columns, matrix.T, strict=True))})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hist/ and today/: a CSV per machine; in hist/ (and parts/) three bad series."""
    root = tmp_path_factory.mktemp("batch-columns")
    for folder in ("hist", "today", "parts"):
        (root / folder).mkdir()
    for key in range(4):
        times, matrix = machine(key)
        table(times[:HISTORY], matrix[:HISTORY]).to_csv(root / "hist" / f"m{key}.csv", index=False)
        table(times[HISTORY:], matrix[HISTORY:]).to_csv(root / "today" / f"m{key}.csv", index=False)
    times, matrix = machine(9)
    table(times[:200], matrix[:200, :2], COLUMNS[:2]).to_csv(root / "hist" / "missing.csv",
                                                             index=False)  # fmt: skip
    text = table(times[:200], matrix[:200]).astype({"outlet": object})
    text.loc[3, "outlet"] = "high"
    text.to_csv(root / "hist" / "text.csv", index=False)
    # one series in two parts, the later part without the pump
    table(times[:100], matrix[:100]).to_csv(root / "hist" / "mixed.csv", index=False)
    table(times[100:200], matrix[100:200, :2], COLUMNS[:2]).to_csv(root / "parts" / "mixed.csv",
                                                                   index=False)  # fmt: skip
    return root


@pytest.fixture(scope="module")
def forest(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("batch-columns-run")
    store, output = root / "store", root / "out"
    common = ["--algorithm", "isolation_forest", "--params", orjson.dumps(FOREST).decode(),
              "--value-columns", ",".join(COLUMNS), "--store-dir", str(store), "--output",
              str(output), "--workers", "2"]  # fmt: skip
    fit = batch("fit", str(inputs / "hist"), str(inputs / "parts"), *common)
    detect = batch("detect", str(inputs / "today"), *common, "--since")
    return {"fit": fit, "detect": detect, "store": store, "output": output}


def forest_id(key: str) -> SeriesId:
    return SeriesId("isolation_forest", params_id(IsolationForest(FOREST).get_params()), key)


def test_a_multivariate_fit_stores_one_model_of_the_columns_per_series_and_each_bad_one_fails(
    forest: dict[str, Any],
) -> None:
    """Each machine's model is fitted on its matrix (the state names the columns); a file
    without a value column, a cell that is no number and a series whose parts have other
    columns each fail alone, with a message that names what is wrong."""
    code, summary, stderr = forest["fit"]
    assert code == 1, stderr[-3000:]
    assert (summary["files"], summary["series_ok"], summary["series_failed"]) == (8, 4, 3)
    failures = {item["file"]: item for item in summary["failures"]}
    assert set(failures) == {"missing.csv", "text.csv", "mixed.csv"}
    assert all(item["code"] == "INVALID_INPUT" for item in failures.values())
    assert all("column" not in item for item in failures.values())  # whole series failed
    missing = failures["missing.csv"]["message"]
    assert "missing.csv has no column 'pump' (it has timestamp, inlet, outlet)" in missing
    assert missing.endswith("--value-columns")
    assert failures["text.csv"]["message"] == (
        "text.csv line 5 column 'outlet': value 'high' is not a number"
    )
    assert failures["mixed.csv"]["together_with"] == ["mixed.csv"]
    assert failures["mixed.csv"]["message"] == (
        "parts/mixed.csv has no value column 'pump' but hist/mixed.csv, another part of "
        "'mixed', has: every part of a series must hold the same value columns"
    )
    store = store_of(forest["store"])
    for key in range(4):
        (fitted, _) = store.history(forest_id(f"m{key}"))  # and the detect --since that followed
        blob, info = store.fetch(forest_id(f"m{key}"), fitted.to_sha256)
        assert info.seen_points == HISTORY and fitted.why == "batch fit"
        assert decode_state(blob).fields["columns"] == COLUMNS
    assert {p.series_key for p in store.pointers()} == {f"m{key}" for key in range(4)}  # type: ignore[union-attr]


def test_multivariate_detections_carry_shares_and_blame_the_spiked_column(
    forest: dict[str, Any],
) -> None:
    """The anomalies are run_detect_matrix_next's with each machine's stored model: same
    times, scores and shares (summing to 1); the spike's detection names its column."""
    code, summary, stderr = forest["detect"]
    assert code == 0, (summary, stderr[-3000:])
    assert (summary["series_ok"], summary["series_failed"]) == (4, 0)
    store = store_of(forest["store"])
    shares = [f"share_{name}" for name in COLUMNS]
    total = 0
    for key in range(4):
        (path,) = (forest["output"] / "anomalies").glob(f"m{key}_csv-*.parquet")
        got = pq.read_table(path).to_pandas()
        assert list(got.columns) == [*ANOMALY_COLUMNS, "column", *shares]
        np.testing.assert_allclose(got[shares].sum(axis=1), 1.0, rtol=0, atol=1e-9)
        assert (got["column"] == [COLUMNS[i] for i in got[shares].to_numpy().argmax(axis=1)]).all()
        assert got["lower"].isna().all() and got["upper"].isna().all()
        pointer = store.pointer(forest_id(f"m{key}"))
        assert pointer is not None and pointer.from_sha256 is not None  # --since moved it
        blob, _ = store.fetch(forest_id(f"m{key}"), pointer.from_sha256)
        times, matrix = machine(key)
        want, after = run_detect_matrix_next(
            IsolationForest(FOREST), times[HISTORY:], matrix[HISTORY:], COLUMNS, blob
        )
        assert after is not None and after.sha256 == pointer.sha256
        assert got["timestamp"].tolist() == want.timestamps.tolist()
        assert got["score"].tolist() == want.scores.tolist()
        np.testing.assert_array_equal(got[shares].to_numpy(), want.contributions)
        if key in SPIKES:
            row, column = SPIKES[key]
            at = got[got["timestamp"].isin([times[row], times[row + 1]])]
            assert len(at) == 1, (key, got)
            assert at["column"].item() == COLUMNS[column], (key, at)
            assert at[f"share_{COLUMNS[column]}"].item() > 0.5
        total += len(got)
    assert summary["anomalies"] == total > 0


def csv_bytes(times: np.ndarray, matrix: np.ndarray) -> bytes:
    return table(times, matrix).to_csv(index=False).encode()


@pytest.fixture(scope="module")
def drift(s3_endpoint: str) -> dict[str, Any]:
    """Drift per column, from s3:// inputs to a store and an output in S3; today/ also holds
    a machine that was never fitted."""
    prefix = "batch-columns"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for key in range(4):
        times, matrix = machine(key)
        for part, rows in (("hist", slice(0, HISTORY)), ("today", slice(HISTORY, None))):
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{part}/m{key}.csv",
                              Body=csv_bytes(times[rows], matrix[rows]))  # fmt: skip
    times, matrix = machine(5)
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/today/unfitted.csv",
                      Body=csv_bytes(times[HISTORY:], matrix[HISTORY:]))  # fmt: skip
    common = ["--algorithm", "drift", "--value-columns", ",".join(COLUMNS), "--bucket", BUCKET,
              "--prefix", f"{prefix}/models", "--endpoint-url", s3_endpoint, "--output",
              f"s3://{BUCKET}/{prefix}/out", "--workers", "2"]  # fmt: skip
    fit = batch("fit", f"s3://{BUCKET}/{prefix}/hist/", *common)
    detect = batch("detect", f"s3://{BUCKET}/{prefix}/today", *common, "--since")
    store = ModelStore(S3Objects(client, BUCKET), f"{prefix}/models")
    return {"client": client, "prefix": prefix, "fit": fit, "detect": detect, "store": store}


def drift_id(key: str) -> SeriesId:
    return SeriesId("drift", params_id(Drift().get_params()), key)


def test_drift_gets_a_model_per_series_and_column(drift: dict[str, Any]) -> None:
    code, summary, stderr = drift["fit"]
    assert code == 0, stderr[-3000:]
    assert (summary["files"], summary["series_ok"], summary["series_failed"]) == (4, 12, 0)
    keys = {p.series_key for p in drift["store"].pointers()}
    assert keys == {f"m{key},column={name}" for key in range(4) for name in COLUMNS}
    client, prefix = drift["client"], drift["prefix"]
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/out/done/fit/")
    (first,) = [item["Key"] for item in listed["Contents"] if "/m0_csv-" in item["Key"]]
    record = orjson.loads(client.get_object(Bucket=BUCKET, Key=first)["Body"].read())
    assert [(one["key"], one["column"]) for one in record["series"]] == [
        (f"m0,column={name}", name) for name in COLUMNS
    ]


def test_drift_per_column_flags_the_drifting_column_only(drift: dict[str, Any]) -> None:
    """Only machine 3's outlet drifts, and only it is flagged (share 1 to it); each column's
    model moved on past the day; a machine with no models fails once per column, naming it."""
    code, summary, stderr = drift["detect"]
    assert code == 1, stderr[-3000:]
    assert (summary["series_ok"], summary["series_failed"]) == (12, 3)
    assert [(item["key"], item["column"], item["code"]) for item in summary["failures"]] == [
        (f"unfitted,column={name}", name, "STATE_NOT_FOUND") for name in COLUMNS
    ]
    client, prefix = drift["client"], drift["prefix"]
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/out/anomalies/")
    frames = [
        pq.read_table(
            io.BytesIO(client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
        ).to_pandas()
        for item in listed["Contents"]
    ]
    found = pd.concat(frames, ignore_index=True)
    assert len(frames) == 5 and summary["anomalies"] == len(found) > 0
    assert set(zip(found["series_key"], found["column"], strict=True)) == {
        (f"m{DRIFTING}", "outlet")
    }
    assert (found["share_outlet"] == 1.0).all()
    assert (found[["share_inlet", "share_pump"]] == 0.0).all(axis=None)
    times, _ = machine(DRIFTING)
    assert found["timestamp"].min() > times[DRIFT_FROM]
    for name in COLUMNS:
        pointer = drift["store"].pointer(drift_id(f"m{DRIFTING},column={name}"))
        assert pointer is not None and pointer.state.seen_end == int(times[-1])


def test_more_value_columns_than_a_matrix_may_have_are_refused_before_any_cluster(
    tmp_path: Path,
) -> None:
    many = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1))
    done = cli("batch", "detect", str(tmp_path), "--algorithm", "ksigma", "--value-columns",
               many, "--output", str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 2, done.stderr
    message = done.stderr.decode()
    assert f"--value-columns names {MAX_COLUMNS + 1} columns: at most {MAX_COLUMNS}" in message
    assert "Traceback" not in message and "dashboard" not in message and done.stdout == b""
    assert f"at most {MAX_COLUMNS}" in cli("batch", "fit", "--help").stdout.decode()


def test_one_value_column_names_its_runs_and_records_as_it_always_did() -> None:
    """However it is named, one value column is the single series it was: the same run key
    (so an earlier run's results are found done), records and anomaly columns."""
    job = JobSpec("detect", "ksigma", {}, StoreSpec(), "/out", value_columns=("v",))
    legacy = {"mode": "detect", "algorithm": "ksigma", "params": {}, "output_format": "parquet",
              "columns": ["timestamp", "v"], "since": False, "sdk": "1.0"}  # fmt: skip
    assert job.fingerprint("1.0") == orjson.dumps(legacy, option=orjson.OPT_SORT_KEYS)
    several = job._replace(value_columns=("v", "w")).fingerprint("1.0")
    assert several != job._replace(key_columns=("w",)).fingerprint("1.0")
    assert "column" not in SeriesOutcome("k", "ok").as_json()
    assert anomaly_columns(["v"]) == list(ANOMALY_COLUMNS)

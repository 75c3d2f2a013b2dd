"""The issue's seed scenario on real S3 (moto_server on loopback): a seasonal detector trained
per sensor for a few hundred synthetic sensors, the models stored in S3, the next day's data for
all of them scored by a scheduled ``batch detect --since`` and the anomalies written back to S3.
"""

from __future__ import annotations

import io
from typing import Any

import boto3
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from warden_algos.algorithms.seasonal import Seasonal
from warden_algos.interfaces.run_state import run_detect_next
from warden_algos.models_folder import params_id
from warden_algos.modelstore.s3 import S3Objects
from warden_algos.modelstore.store import ModelStore, SeriesId

from .conftest import BUCKET, cli

T0 = 1_700_006_400  # a midnight
STEP = 300  # five minutes
DAY = 288
HISTORY_DAYS = 4
SENSORS = 200


def sensor(key: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Five days at five minutes with a daily shape of the sensor's own; a spike on day five."""
    rng = np.random.default_rng(1000 + key)
    n = (HISTORY_DAYS + 1) * DAY
    phase = rng.uniform(0, 2 * np.pi)
    minutes = np.arange(n)
    values = 100 + 20 * np.sin(2 * np.pi * minutes / DAY + phase) + rng.normal(0, 1.5, n)
    spike = HISTORY_DAYS * DAY + int(rng.integers(30, DAY - 30))
    values[spike] += 40
    return T0 + STEP * minutes, values, spike


def csv_bytes(times: np.ndarray, values: np.ndarray) -> bytes:
    lines = ["timestamp,value"] + [
        f"{t},{v!r}" for t, v in zip(times.tolist(), values.tolist(), strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def run(*args: str) -> tuple[int, dict[str, Any], str]:
    done = cli("batch", *args, "--no-progress", timeout=600)
    summary = orjson.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, summary, done.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def scenario(s3_endpoint: str) -> dict[str, Any]:
    prefix = "batch-seed"
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    spikes = {}
    for key in range(SENSORS):
        times, values, spike = sensor(key)
        cut = HISTORY_DAYS * DAY
        name = f"sensor-{key:03d}.csv"
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/history/{name}",
                          Body=csv_bytes(times[:cut], values[:cut]))  # fmt: skip
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/today/{name}",
                          Body=csv_bytes(times[cut:], values[cut:]))  # fmt: skip
        spikes[key] = int(times[spike])
    store = ["--bucket", BUCKET, "--prefix", f"{prefix}/models", "--endpoint-url", s3_endpoint]
    output = f"s3://{BUCKET}/{prefix}/out"
    fit = run("fit", f"s3://{BUCKET}/{prefix}/history/", "--algorithm", "seasonal", *store,
              "--output", output, "--workers", "2")  # fmt: skip
    detect = run("detect", f"s3://{BUCKET}/{prefix}/today", "--algorithm", "seasonal", *store,
                 "--output", output, "--workers", "2", "--since")  # fmt: skip
    again = run("detect", f"s3://{BUCKET}/{prefix}/today", "--algorithm", "seasonal", *store,
                "--output", output, "--workers", "2", "--since")  # fmt: skip
    return {"client": client, "prefix": prefix, "spikes": spikes, "fit": fit, "detect": detect,
            "again": again, "endpoint": s3_endpoint}  # fmt: skip


def test_every_sensor_is_fitted_and_stored_in_s3(scenario: dict[str, Any]) -> None:
    code, summary, stderr = scenario["fit"]
    assert code == 0, stderr[-3000:]
    assert (summary["files"], summary["series_ok"], summary["series_failed"]) == (SENSORS,) * 2 + (
        0,
    )
    written = scenario["client"].get_object(
        Bucket=BUCKET, Key=f"{scenario['prefix']}/out/summary-fit.json"
    )
    assert orjson.loads(written["Body"].read())["series_ok"] == SENSORS


def test_the_next_day_is_scored_and_the_anomalies_are_in_s3(scenario: dict[str, Any]) -> None:
    """Every sensor's anomalies object is there, equal to run_detect_next of its stored model
    over its day (checked on a sample), and the injected spike is found for nearly all."""
    code, summary, stderr = scenario["detect"]
    assert code == 0, stderr[-3000:]
    assert (summary["series_ok"], summary["series_failed"]) == (SENSORS, 0)
    client, prefix = scenario["client"], scenario["prefix"]
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/out/anomalies/")
    keys = sorted(item["Key"] for item in listed.get("Contents", []))
    assert len(keys) == SENSORS
    store = ModelStore(S3Objects(client, BUCKET), f"{prefix}/models")
    found = 0
    for key, name in enumerate(keys):
        table = pq.read_table(io.BytesIO(client.get_object(Bucket=BUCKET, Key=name)["Body"].read()))
        frame = table.to_pandas()
        assert set(frame["series_key"]) <= {f"sensor-{key:03d}"}
        found += scenario["spikes"][key] in frame["timestamp"].tolist()
        if key % 50 == 0:  # the stored model it started from: the pointer's predecessor
            series = SeriesId("seasonal", params_id(Seasonal().get_params()), f"sensor-{key:03d}")
            pointer = store.pointer(series)
            assert pointer is not None and pointer.from_sha256 is not None
            blob, _ = store.fetch(series, pointer.from_sha256)
            times, values, _ = sensor(key)
            cut = HISTORY_DAYS * DAY
            want, after = run_detect_next(Seasonal(), times[cut:], values[cut:], blob)
            assert frame["timestamp"].tolist() == want.timestamps.tolist()
            assert frame["score"].tolist() == want.scores.tolist()
            assert after is not None and after.sha256 == pointer.sha256
            assert pointer.state.seen_end == int(times[-1])
    assert found >= 0.95 * SENSORS, found


def test_the_next_scheduled_run_has_nothing_to_redo(scenario: dict[str, Any]) -> None:
    code, summary, stderr = scenario["again"]
    assert code == 0, stderr[-3000:]
    assert (summary["series_ok"], summary["series_skipped"], summary["anomalies"]) == (
        0,
        SENSORS,
        scenario["detect"][1]["anomalies"],
    )

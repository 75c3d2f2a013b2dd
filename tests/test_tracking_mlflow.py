"""Experiment tracking with MLflow: ``evaluate``, ``models fit`` and ``batch fit`` with
``--mlflow``, into a local folder (nothing running) and into a real tracking server on loopback,
read back through ``MlflowClient`` to prove the params, metrics, tags and artifacts arrived; and
a tracking store that cannot be reached refused in one line before any work."""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from mlflow.tracking import MlflowClient  # imported first: MLflow's log handlers bind stderr

from warden_algos.cli import main
from warden_algos.modelstore.local import FolderObjects
from warden_algos.modelstore.records import ModelPointer
from warden_algos.modelstore.store import ModelStore

from .conftest import cli
from .s3_server import free_port
from .test_evaluation import _tiny_corpus

pytestmark = pytest.mark.slow


def _experiment() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"  # every test its own experiment on the shared server


def _runs(client: MlflowClient, experiment: str) -> list[Any]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, experiment
    return list(client.search_runs([found.experiment_id]))


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    return {item.path for item in client.list_artifacts(run_id, path)}


def _table(client: MlflowClient, run_id: str, name: str, folder: Path) -> list[dict[str, Any]]:
    """A ``log_table`` artifact's rows (MLflow writes columns and data)."""
    local = Path(client.download_artifacts(run_id, name, str(folder)))
    document = orjson.loads(local.read_bytes())
    return [dict(zip(document["columns"], row, strict=True)) for row in document["data"]]


def _run_id(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if " logged as run " in line]
    return line.split(" logged as run ", 1)[1].split(":", 1)[0]


def test_evaluate_logs_into_a_local_folder_when_no_uri_is_given(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mlflow_booting: object,  # not used here: the next tests' server boots meanwhile
) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "out.json"
    code = main(
        ["evaluate", "--algorithm", "ksigma", "--params", '{"k": 6}', "--corpus", str(root),
         "--no-cache", "--json", str(out), "--mlflow"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "mlflow" not in captured.out.lower()  # stdout is the table only
    run_id = _run_id(captured.err)
    client = MlflowClient(f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    (run,) = _runs(client, "warden-algos")
    assert run.info.run_id == run_id and run.info.status == "FINISHED"
    assert run.data.params["algorithm"] == "ksigma"
    assert run.data.params["params.k"] == "6.0"
    document = orjson.loads(out.read_bytes())
    nab = document["result"]["overall"]["nab"]
    assert run.data.metrics["nab_standard"] == pytest.approx(nab["standard"])
    assert run.data.metrics["nab_low_fn"] == pytest.approx(nab["low_fn"])
    assert run.data.metrics["category/spiky/windows_found"] == 1
    assert "baseline/windowed_gaussian/nab_standard" in run.data.metrics
    # no --detections-out or --plot: made in a temporary folder for the run all the same
    assert _artifacts(client, run_id) == {"evaluation.json", "detections.csv", "plots"}
    assert _artifacts(client, run_id, "plots") == {"plots/clean__two.png", "plots/spiky__one.png"}
    assert (work / "mlruns" / "artifacts").is_dir()  # the folder holds the artifacts too


def test_evaluate_logs_grid_cv_ranges_and_artifacts_to_a_tracking_server(
    mlflow_tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tiny_corpus(tmp_path / "corpus")
    experiment = _experiment()
    code = main(
        ["evaluate", "--algorithm", "ksigma", "--corpus", str(root), "--no-cache",
         "--grid", '{"k": [4, 6, 1000]}', "--cv", "2", "--range-metrics",
         "--mlflow", mlflow_tracking, "--mlflow-experiment", experiment]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "View run" not in captured.out  # MLflow's own line is kept off stdout
    run_id = _run_id(captured.err)
    assert f"{mlflow_tracking}/#/experiments/" in captured.err
    client = MlflowClient(mlflow_tracking)
    runs = _runs(client, experiment)
    parent = next(run for run in runs if run.info.run_id == run_id)
    children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == run_id]
    assert len(runs) == 4 and len(children) == 3  # one child per grid setting
    metrics, params = parent.data.metrics, parent.data.params
    assert params["grid"] == '{"k": [4, 6, 1000]}' and params["cv"] == "2"
    assert metrics["windows_found"] == 1 and metrics["range_precision"] == 1.0
    assert 0.5 < metrics["range_recall"] < 0.6  # one onset point of a 41-row window
    for profile in ("standard", "low_fp", "low_fn"):
        assert f"cv/nab_{profile}" in metrics and f"cv/gap_nab_{profile}" in metrics
    by_rank = {int(run.data.tags["warden.grid_rank"]): run for run in children}
    assert by_rank[3].data.params["params.k"] == "1000.0"  # never fires
    assert by_rank[3].data.metrics["nab_standard"] == 0.0
    assert _artifacts(client, run_id) >= {
        "evaluation.json", "detections.csv", "plots", "grid.json", "cross_validation.json",
        "cross_validation_full.json",
    }  # fmt: skip
    grid = _table(client, run_id, "grid.json", tmp_path / "down")
    assert [row["rank"] for row in grid] == [1, 2, 3]
    assert params["params.k"] == str(grid[0]["params.k"])  # the run is the best setting's
    assert [row["params.k"] for row in grid][2] == 1000.0
    folds = _table(client, run_id, "cross_validation.json", tmp_path / "down")
    assert {row["profile"] for row in folds} == {"standard", "low_fp", "low_fn"}
    assert len(folds) == 3 * 2 and all(row["chosen_params"].startswith("{") for row in folds)
    detections = Path(client.download_artifacts(run_id, "detections.csv", str(tmp_path / "d")))
    rows = list(csv.reader(io.StringIO(detections.read_text())))
    assert rows[0] == ["file", "timestamp", "score"] and len(rows) > 1


def _history(tmp_path: Path) -> Path:
    lines = ["host,timestamp,value"] + [
        f"{host},{1_700_000_000 + 60 * i},{10 + (i % 5) * 0.1}"
        for host in ("web-1", "web-2")
        for i in range(200)
    ]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_models_fit_logs_each_model_and_links_the_store_entry_to_the_run(
    mlflow_tracking: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = _experiment()
    store_dir = tmp_path / "store"
    code = main(
        ["models", "fit", str(_history(tmp_path)), "--algorithm", "ksigma", "--key-columns",
         "host", "--store-dir", str(store_dir), "--json", "--mlflow", mlflow_tracking,
         "--mlflow-experiment", experiment]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    fitted = orjson.loads(captured.out)  # stdout is still exactly the JSON document
    assert fitted["pushed"] == 2
    run_id = _run_id(captured.err)
    client = MlflowClient(mlflow_tracking)
    (run,) = _runs(client, experiment)
    assert run.info.status == "FINISHED"
    assert run.data.tags["warden.model_store"] == store_dir.absolute().as_uri()
    assert run.data.params["algorithm"] == "ksigma" and "params.k" in run.data.params
    assert run.data.metrics["models_pushed"] == 2 and run.data.metrics["points"] == 400
    models = {row["key"]: row for row in _table(client, run_id, "models.json", tmp_path / "dl")}
    assert set(models) == {"host=web-1", "host=web-2"}
    one = models["host=web-1"]
    assert one["points"] == 200 and one["generation"] == 1 and one["size"] > 0
    assert one["seen_start"].startswith("2023-11-14T22:13:20")
    assert one["model_uri"].startswith(store_dir.absolute().as_uri())
    store = ModelStore(FolderObjects(store_dir))
    for pointer in store.pointers():
        assert isinstance(pointer, ModelPointer)
        assert pointer.why.endswith(f"[mlflow run {run_id}]")  # the store names the run
        assert models[pointer.series_key]["sha256"] == pointer.sha256


def test_batch_fit_logs_one_parent_run_with_a_table_of_every_series(
    mlflow_tracking: str, tmp_path: Path
) -> None:
    experiment = _experiment()
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("a", "b"):
        rows = [f"{1_700_000_000 + 60 * i},{1 + (i % 3) * 0.1}" for i in range(200)]
        (inputs / f"{name}.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    (inputs / "dup.csv").write_text("timestamp,value\n1700000000,1\n1700000000,2\n")
    store_dir = tmp_path / "store"
    done = cli(
        "batch", "fit", str(inputs), "--algorithm", "ksigma", "--store-dir", str(store_dir),
        "--output", str(tmp_path / "out"), "--workers", "1", "--no-progress",
        "--mlflow", mlflow_tracking, "--mlflow-experiment", experiment, timeout=180,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr.decode()[-2000:]  # dup.csv fails alone
    summary = orjson.loads(done.stdout)
    assert (summary["series_ok"], summary["series_failed"]) == (2, 1)
    run_id = _run_id(done.stderr.decode())
    client = MlflowClient(mlflow_tracking)
    (run,) = _runs(client, experiment)  # one run for the job, not one per series
    assert run.info.status == "FAILED"  # as the exit code says
    assert run.data.metrics["series_ok"] == 2 and run.data.metrics["series_failed"] == 1
    assert run.data.metrics["files"] == 3 and run.data.metrics["wall_s"] > 0
    assert run.data.tags["warden.model_store"] == store_dir.absolute().as_uri()
    series = {row["key"]: row for row in _table(client, run_id, "series.json", tmp_path / "dl")}
    assert {key: row["status"] for key, row in series.items()} == {
        "a": "ok",
        "b": "ok",
        "dup": "failed",
    }
    assert series["dup"]["code"] == "INVALID_INPUT" and series["a"]["points"] == 200
    pointers = ModelStore(FolderObjects(store_dir)).pointers()
    assert len(pointers) == 2
    for pointer in pointers:
        assert isinstance(pointer, ModelPointer)
        assert pointer.why == f"batch fit [mlflow run {run_id}]"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://127.0.0.1:{port}", "connection refused"),
        ("bogus://nowhere", "unsupported URI 'bogus://nowhere'"),
    ],
)
def test_a_tracking_store_that_cannot_be_used_is_one_line_before_any_work(
    uri: str, reason: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    uri = uri.format(port=free_port())
    root = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "out.json"
    code = main(
        ["evaluate", "--algorithm", "ksigma", "--corpus", str(root), "--json", str(out),
         "--no-cache", "--mlflow", uri]
    )  # fmt: skip
    captured = capfd.readouterr()
    assert code == 2
    (line,) = captured.err.strip().splitlines()
    assert line.startswith(f"warden-algos evaluate: error: cannot use MLflow tracking at {uri}: ")
    assert reason in line and "Traceback" not in captured.err
    assert captured.out == "" and not out.exists()  # refused before detecting anything
    store_dir = tmp_path / "store"
    code = main(
        ["models", "fit", str(_history(tmp_path)), "--algorithm", "ksigma", "--key-columns",
         "host", "--store-dir", str(store_dir), "--mlflow", uri]
    )  # fmt: skip
    captured = capfd.readouterr()
    assert code == 1 and len(captured.err.strip().splitlines()) == 1, captured.err
    assert reason in captured.err and not store_dir.exists()  # nothing fitted, nothing pushed

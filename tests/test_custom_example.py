"""The example third-party package, installed for real with pip, then used through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from .conftest import EXAMPLES, cli, detect_request, dumps
from .plugins.environments import install_example_plugin

EXAMPLE = EXAMPLES / "custom_algorithm"


@pytest.fixture(scope="module")
def example_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("example-site")
    env = install_example_plugin(target)
    assert list(Path(target).glob("warden_example_tukey-*.dist-info"))
    return env


def test_installed_plugin_is_listed(example_env: dict[str, str]) -> None:
    done = cli("list", "--json", env=example_env)
    assert done.returncode == 0, done.stderr.decode()
    rows = {row["name"]: row for row in orjson.loads(done.stdout)}
    assert rows["tukey_fences"]["interface"] == "detect"
    assert rows["tukey_fences"]["source"].startswith("warden-example-tukey")
    assert {"ksigma", "correlation"} <= set(rows)


def test_installed_plugin_runs_through_the_cli(example_env: dict[str, str]) -> None:
    request = detect_request("tukey_fences", params={"window": 48})
    done = cli("run", stdin=dumps(request), env=example_env)
    response = orjson.loads(done.stdout)
    assert response["status"] == "ok", response
    assert request["detect"]["timestamps"][150] in response["detect"]["timestamps"]


def test_installed_plugin_describes_its_params(example_env: dict[str, str]) -> None:
    done = cli("describe", "tukey_fences", "--json", env=example_env)
    info = orjson.loads(done.stdout)
    assert info["params_schema"]["properties"]["fence"]["default"] == 3.0


def test_installed_plugin_passes_the_contract_check(example_env: dict[str, str]) -> None:
    done = cli("check", "tukey_fences", env=example_env)
    assert done.returncode == 0, done.stdout.decode()


def test_example_package_own_tests_pass(example_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env=example_env,
        capture_output=True,
        timeout=300,
        check=False,
        cwd=EXAMPLE,
    )
    assert done.returncode == 0, done.stdout.decode()[-3000:]


def test_the_readme_trains_stores_syncs_and_streams_the_example(
    example_env: dict[str, str], tmp_path: Path
) -> None:
    """README, "Stored models": fit the example's history per host, push, sync, then score a
    new point with the stored model of one host and get the state after it back."""
    store, models = tmp_path / "store", tmp_path / "models"
    history = EXAMPLE / "history.csv"
    fit = ("models", "fit", str(history), "--algorithm", "tukey_fences", "--key-columns", "host")
    fitted = cli(*fit, "--store-dir", str(store), env=example_env)
    assert fitted.returncode == 0, fitted.stderr.decode()
    assert b"2 pushed" in fitted.stdout
    synced = cli(
        "models", "sync", "--store-dir", str(store), "--dest", str(models), env=example_env
    )
    assert synced.returncode == 0 and b"2 installed" in synced.stdout, synced.stderr.decode()
    request = {"interface": "detect", "algorithm": "tukey_fences", "detect": {
        "timestamps": [1700086400], "values": [310.0], "model": "host=web-1",
        "return_state": True}}  # fmt: skip
    done = cli("run", "--models-dir", str(models), stdin=dumps(request), env=example_env)
    answer = orjson.loads(done.stdout)
    assert answer["status"] == "ok", answer
    assert answer["detect"]["timestamps"] == [1700086400]  # 310 is far above web-1's fences
    assert len(answer["detect"]["state_sha256"]) == 64

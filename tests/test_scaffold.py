"""``warden-algos new``: the generated package installs with pip, registers its algorithm, passes
the SDK's checks and its own tests at once, and answers its example request; bad requests for a
package are refused in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from .conftest import cli, env_with_path


def pip_install(package: Path, site: Path) -> None:
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--no-index", "--target", str(site), str(package),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "interface"), [("rolling_robust", "detect"), ("moved_most", "rca")]
)
def test_a_new_package_installs_registers_and_passes_its_own_tests(
    tmp_path: Path, name: str, interface: str
) -> None:
    folder = tmp_path / "package"
    made = cli("new", name, "--interface", interface, "--dir", str(folder))
    assert made.returncode == 0, made.stderr
    assert f"warden-algos check {name}" in made.stdout.decode()
    site = tmp_path / "site"
    pip_install(folder, site)
    env = env_with_path(site)
    listed = {row["name"]: row for row in orjson.loads(cli("list", "--json", env=env).stdout)}
    distribution = "warden-" + name.replace("_", "-")
    assert listed[name]["interface"] == interface
    assert listed[name]["source"] == f"{distribution} 0.1.0"
    checked = cli("check", name, env=env)
    assert checked.returncode == 0, checked.stdout.decode()
    module = "warden_" + name
    request = folder / "src" / module / "warden_requests" / "example.json"
    answer = orjson.loads(cli("run", stdin=request.read_bytes(), env=env).stdout)
    assert answer["status"] == "ok", answer
    # The request ships in the wheel, where build --verify finds it (here the unfrozen command
    # stands in for the executable: the comparison and the case list are the same).
    assert (site / module / "warden_requests" / "example.json").read_bytes() == request.read_bytes()
    verified = cli(
        "build", "--verify-only", str(Path(sys.executable).parent / "warden-algos"),
        "--algorithm", name, env=env,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr.decode()[-2000:]
    # its conformance cases, and its one shipped request one-shot and in serve mode
    assert re.search(
        rf"verified {name}: \d+ answers \(\d+ conformance, 2 shipped\)", verified.stderr.decode()
    )
    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert own_tests.returncode == 0, own_tests.stdout[-3000:]
    assert " passed" in own_tests.stdout and "failed" not in own_tests.stdout
    class_name = "".join(part.capitalize() for part in name.split("_"))
    for check in ("check_registration", "check_import_cost", "check_stdout_untouched"):
        assert f"[{class_name}-{check}] PASSED" in own_tests.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ksigma"], "already registered"),
        (["Not-Snake"], "must be lower_snake_case"),
        (["fine_name", "--interface", "forecast"], "invalid choice"),
    ],
)
def test_a_package_that_cannot_be_made_is_refused_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = cli("new", *args, "--dir", str(tmp_path / "out"))
    assert done.returncode == 2
    assert message in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
    assert not (tmp_path / "out").exists()


def test_new_never_writes_into_a_folder_that_has_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    done = cli("new", "fresh_one", "--dir", str(tmp_path))
    assert done.returncode == 2 and b"not an empty folder" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]

"""The package as users get it: a wheel built from the checkout, installed with the core
dependencies only into a fresh virtual environment, used from outside the checkout.

This is what `pip install warden-algos` gives an author: it must run, check and describe
algorithms; it must carry the files installed commands read (the IDL, the shared vectors, the
PyInstaller spec, the JSON Schemas, the example requests); it must not bring prophet, boto3,
matplotlib or PyInstaller; and every command or algorithm that needs one of those names the extra
to install instead of failing with a traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import NamedTuple

import orjson
import pytest

from warden_algos.extras import EXTRAS

from .conftest import EXAMPLES, ROOT, checkout_status

HEAVY = ("prophet", "boto3", "matplotlib", "PyInstaller", "scipy")


class CoreInstall(NamedTuple):
    wheel: Path
    python: Path
    command: Path
    outside: Path  # a working folder outside the checkout


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> CoreInstall:
    base = tmp_path_factory.mktemp("core-install")
    before = checkout_status()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(base), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert checkout_status() == before, "pip wheel . wrote into the checkout"
    wheel = next(base.glob("warden_algos-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    outside = base / "work"
    outside.mkdir()
    return CoreInstall(wheel, venv / "bin" / "python", venv / "bin" / "warden-algos", outside)


def run(
    install: CoreInstall, *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(install.command), *args],
        input=stdin,
        capture_output=True,
        cwd=cwd or install.outside,
        timeout=300,
        check=False,
    )


def test_the_wheel_holds_one_package_and_the_shared_files(core: CoreInstall) -> None:
    names = zipfile.ZipFile(core.wheel).namelist()
    top = {
        name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")
    }
    assert top == {"warden_algos"}, top
    shared = "warden_algos/_shared/"
    for required in (
        "serialization/warden.thrift",
        "build/warden_algos.spec",
        "build/entry.py",
        "build/hooks/hook-prophet.py",
        "interfaces/request.schema.json",
        "examples/requests/ksigma.json",
    ):
        assert shared + required in names, required
    vectors = {name for name in names if name.startswith(shared + "serialization/vectors/")}
    committed = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "serialization" / "vectors").rglob("*")
        if path.is_file()
    }
    assert {name.removeprefix(shared) for name in vectors} == committed
    assert not any("__pycache__" in name for name in names)


def test_core_install_leaves_out_the_heavy_extras(core: CoreInstall) -> None:
    probe = (
        "import importlib.util, json;"
        f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {HEAVY!r}}}))"
    )
    done = subprocess.run(
        [str(core.python), "-c", probe], capture_output=True, cwd=core.outside, check=True
    )
    assert orjson.loads(done.stdout) == dict.fromkeys(HEAVY, False)


def test_readme_example_runs_from_the_core_install(core: CoreInstall) -> None:
    done = run(core, "run", stdin=(EXAMPLES / "requests" / "ksigma.json").read_bytes())
    assert done.returncode == 0, done.stderr
    answer = orjson.loads(done.stdout)
    assert answer["status"] == "ok" and answer["detect"]["timestamps"] == [1700060000]
    assert done.stdout.endswith(b"\n") or done.stdout.endswith(b"}")


def test_check_and_describe_a_builtin_from_the_core_install(core: CoreInstall) -> None:
    done = run(core, "check", "ksigma")
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    described = orjson.loads(run(core, "describe", "mad", "--json").stdout)
    assert described["name"] == "mad" and "properties" in described["params_schema"]


def test_installed_commands_find_their_data(core: CoreInstall) -> None:
    """The wheel's copy, not a checkout: the IDL, the vectors, the spec, the example requests."""
    script = (
        "from warden_algos import resources\n"
        "from warden_algos.executable.verify import cases\n"
        "found, skipped = cases(requests=resources.example_requests())\n"
        "print(resources.idl()); print(resources.pyinstaller_folder()); print(len(found))\n"
    )
    done = subprocess.run(
        [str(core.python), "-c", script], capture_output=True, text=True, cwd=core.outside
    )
    assert done.returncode == 0, done.stderr
    idl, spec_folder, count = done.stdout.split()
    assert "site-packages" in idl and Path(idl).is_file()
    assert (Path(spec_folder) / "warden_algos.spec").is_file()
    assert int(count) > 50


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["build"], "build"),
        (["release", "list"], "deploy"),
        (["pull", "--channel", "prod", "--dest", "x"], "deploy"),
        (["node", "--channel", "prod", "--dest", "x"], "deploy"),
        (["test-deploy", "--cluster", "cluster.toml"], "deploy"),
        (["evaluate", "--algorithm", "ksigma", "--corpus", ".", "--plot", "plots"], "evaluate"),
        (["evaluate", "--algorithm", "adtributor"], "evaluate"),
    ],
)
def test_a_role_command_names_its_extra(core: CoreInstall, args: list[str], extra: str) -> None:
    done = run(core, *args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == b""
    message = done.stderr.decode()
    assert "Traceback" not in message
    assert f"pip install 'warden-algos[{extra}]'" in message, message
    assert len(message.strip().splitlines()) == 1, message


def test_a_request_for_prophet_names_its_extra(core: CoreInstall) -> None:
    request = orjson.loads((EXAMPLES / "requests" / "ksigma.json").read_bytes())
    request.update(algorithm="prophet", params={})
    done = run(core, "run", stdin=orjson.dumps(request))
    answer = orjson.loads(done.stdout)
    assert answer["status"] == "error", answer
    assert answer["error"]["code"] == "ALGORITHM_FAILED"
    assert "pip install 'warden-algos[prophet]'" in answer["error"]["message"]
    assert b"Traceback" not in done.stderr
    assert "prophet" in run(core, "list").stdout.decode()  # still listed, still described


def test_the_checkout_beside_a_regular_install_imports_whole(core: CoreInstall) -> None:
    """Running from the checkout (pytest's rootdir) shadows the installed package with the
    checkout's warden_algos/, which must itself be complete: no part lives elsewhere."""
    done = subprocess.run(
        [
            str(core.python),
            "-c",
            "import warden_algos.interfaces, warden_algos.wire, warden_algos.executable.verify,"
            " warden_algos.delivery.records; print(warden_algos.interfaces.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(ROOT / "warden_algos"))


def test_extras_table_matches_pyproject() -> None:
    """warden_algos.extras names the extras pyproject.toml defines, and each import it checks
    belongs to a distribution that extra (or an extra it includes) installs."""
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def distributions(extra: str) -> set[str]:
        names: set[str] = set()
        for requirement in optional[extra]:
            name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
            if name == "warden-algos":
                for included in re.search(r"\[(.*)\]", requirement).group(1).split(","):  # type: ignore[union-attr]
                    names |= distributions(included.strip())
            else:
                names.add(name)
        return names

    assert set(EXTRAS) <= set(optional)
    assert {"all", "dev"} <= set(optional)
    # import name -> distribution, where they differ
    installed_as = {"sklearn": "scikit-learn", "mlflow": "mlflow-skinny"}
    for extra, modules in EXTRAS.items():
        wanted = {installed_as.get(module.lower(), module.lower()) for module in modules}
        assert wanted <= distributions(extra), extra
    assert set(EXTRAS) <= {extra for extra in optional if extra != "dev"} and distributions(
        "all"
    ) >= set().union(*(distributions(e) for e in EXTRAS))

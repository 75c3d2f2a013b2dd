"""Registry: discovery, uniqueness, contract checks at load time, and lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from warden_algos.interfaces.errors import UnknownAlgorithm
from warden_algos.registry import (
    BUILTIN_ALGORITHMS,
    AlgorithmEntry,
    Registry,
    RegistryError,
)

from .conftest import (
    PLUGIN_MODULE,
    cli,
    detect_request,
    dumps,
    env_with_path,
    install_fake_distribution,
)


def test_builtins_are_discovered_and_load() -> None:
    registry = Registry.discover()
    assert set(BUILTIN_ALGORITHMS) <= set(registry.names())
    assert registry.load("ksigma").interface == "detect"
    assert registry.load("correlation").interface == "rca"


def test_unknown_name_lists_what_exists() -> None:
    with pytest.raises(UnknownAlgorithm, match=r"registered: .*ksigma"):
        Registry.discover().load("nope")


def test_duplicate_names_fail_at_discovery_naming_both_sources() -> None:
    entries = [
        AlgorithmEntry("ksigma", "warden_algos.algorithms.ksigma:KSigma", "built-in"),
        AlgorithmEntry("ksigma", "other.mod:K", "other-dist 2.0"),
    ]
    with pytest.raises(RegistryError, match=r"registered twice.*built-in.*other-dist 2\.0"):
        Registry.from_entries(entries)


def test_bad_names_fail_at_discovery() -> None:
    with pytest.raises(RegistryError, match="lower_snake_case"):
        Registry.from_entries([AlgorithmEntry("KSigma", "a:b", "x 1")])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:Algo", "cannot load"),
        ("os:path", "is not a class"),
        ("collections:OrderedDict", "subclasses neither"),
        ("warden_test_algos:WrongName", "class says name = 'something_else'"),
        ("warden_test_algos", "form 'package.module:ClassName'"),
    ],
)
def test_broken_plugins_are_named_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    monkeypatch.syspath_prepend(str(PLUGIN_MODULE.parent))
    entry = AlgorithmEntry("broken_one", target, "broken-dist 0.1")
    with pytest.raises(RegistryError, match=message) as caught:
        Registry.from_entries([entry]).load("broken_one")
    assert "broken-dist 0.1" in str(caught.value)


def test_cli_list_reports_a_duplicate_plugin(tmp_path: Path) -> None:
    install_fake_distribution(tmp_path, "dup_plugin", {"correlation": "x:y"})
    done = cli("list", env=env_with_path(tmp_path))
    assert done.returncode == 1
    assert b"registered twice" in done.stderr
    assert done.stdout == b""


def test_list_json_and_describe() -> None:
    rows = orjson.loads(cli("list", "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["ksigma"]["source"] == "built-in"
    info = orjson.loads(cli("describe", "ksigma", "--json").stdout)
    assert info["signature"].startswith("detect(")
    assert info["params_schema"]["properties"]["window"]["minimum"] == 2
    assert "Use it for" in info["description"]
    text = cli("describe", "correlation").stdout.decode()
    assert "simple_rca(" in text and "params (JSON schema)" in text
    missing = cli("describe", "nope")
    assert missing.returncode == 1 and b"no algorithm named" in missing.stderr


def test_version_and_schema_commands() -> None:
    from warden_algos import __version__

    assert cli("version").stdout.decode().strip() == f"warden-algos {__version__}"
    assert orjson.loads(cli("version", "--json").stdout)["version"] == __version__
    schema = orjson.loads(cli("schema", "request").stdout)
    assert {"interface", "algorithm", "detect", "rca"} <= set(schema["properties"])


HEAVY = ["pandas", "scipy", "prophet", "matplotlib", "rich", "warden_algos.algorithms.correlation"]


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["list", "--json"],
        ["describe", "ksigma"],
    ],
)
def test_light_paths_do_not_import_heavy_libraries(command: list[str]) -> None:
    """Run the CLI in-process in a child and report which heavy modules got imported."""
    probe = (
        "import sys, io, os\n"
        "from warden_algos.cli import main\n"
        "try:\n"
        f"    main({command!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "os.write(2, ('HEAVY=' + ','.join(heavy) + '\\n').encode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=dumps(detect_request()),
        capture_output=True,
        timeout=60,
        check=False,
    )
    marker = [line for line in done.stderr.decode().splitlines() if line.startswith("HEAVY=")]
    assert marker, done.stderr.decode()
    imported = marker[0].removeprefix("HEAVY=").split(",")
    allowed = {"rich", "warden_algos.algorithms.correlation"} if command[0] != "run" else set()
    assert set(filter(None, imported)) <= allowed, imported


def test_a_near_miss_name_gets_the_closest_registered_names() -> None:
    """A typo or a plural answers UNKNOWN_ALGORITHM with the names it was probably meant as; a
    name far from every registered one gets the plain list (the shared vector holds its bytes)."""
    registry = Registry.discover()
    with pytest.raises(UnknownAlgorithm, match=r"did you mean 'ksigma'\?") as caught:
        registry.load("ksigmaa")
    assert "registered: adtributor" in str(caught.value)
    with pytest.raises(UnknownAlgorithm, match=r"did you mean 'level_shift'\?"):
        registry.load("level_shifts")
    with pytest.raises(UnknownAlgorithm) as far:
        registry.load("no_such_algorithm")
    assert "did you mean" not in str(far.value)
    described = cli("describe", "spectral_residuals")
    assert described.returncode == 1
    assert b"did you mean 'spectral_residual'?" in described.stderr


def test_list_shows_the_healthy_algorithms_and_marks_a_broken_plugin(tmp_path: Path) -> None:
    install_fake_distribution(tmp_path, "broken_plugin", {"broken_one": "warden_no_such_module:X"})
    env = env_with_path(tmp_path)
    listed = cli("list", "--json", env=env)
    assert listed.returncode == 1  # something is wrong, and scripts can tell
    rows = {row["name"]: row for row in orjson.loads(listed.stdout)}
    assert rows["ksigma"]["interface"] == "detect" and "error" not in rows["ksigma"]
    assert rows["broken_one"]["interface"] is None
    assert "warden_no_such_module" in rows["broken_one"]["error"]
    assert "broken_plugin" in rows["broken_one"]["source"]
    table = cli("list", env=env)
    text = table.stdout.decode()
    assert table.returncode == 1
    assert "BROKEN" in text and "ksigma" in text and "1 broken" in text
    assert b"warden_no_such_module" in table.stderr

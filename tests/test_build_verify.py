"""Which shared vectors a build's verification replays: plugin vectors only where their plugin is
installed, so a plugin build proves ALGORITHM_FAILED and TIMEOUT and a plain build says why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from warden_algos.executable.verify import Case, cases, plugin_algorithms
from warden_algos.registry import AlgorithmEntry, Registry, RegistryError
from warden_algos.wire import CODECS

from .conftest import EXAMPLES
from .plugins.environments import TEST_PLUGINS

PLUGIN_VECTORS = {"algorithm_failed", "timeout"}  # their requests call test_crash, test_sleep


def names(found: list[Case]) -> set[str]:
    return {case.name for case in found}


def skipped_names(skipped: list[str]) -> set[str]:
    return {line.split(" ")[0] for line in skipped}


def test_without_plugins_every_non_default_vector_is_skipped_with_its_reason() -> None:
    found, skipped = cases(plugins=())
    assert not PLUGIN_VECTORS & names(found)
    assert skipped_names(skipped) == PLUGIN_VECTORS | {"internal_duplicate_registration"}
    assert any("'test_crash' is not an installed plugin here" in line for line in skipped)


def test_installed_test_plugins_bring_their_vectors_in_every_format() -> None:
    found, skipped = cases(plugins=TEST_PLUGINS)
    for vector in PLUGIN_VECTORS:
        assert {c.format_name for c in found if c.name == vector} == set(CODECS)
    timeout = next(c for c in found if c.name == "timeout")
    assert timeout.args == ("--timeout-s", "0.2")  # so verify runs it one-shot only
    # The broken-registry vector calls ksigma: a shadowing plugin, not a missing one, makes it
    # INTERNAL, and a process with one installed cannot build at all. It stays out, and says why.
    (line,) = skipped
    assert line.startswith("internal_duplicate_registration ")
    assert "built-in 'ksigma'" in line


def test_plugin_algorithms_are_the_entries_not_from_the_built_in_table() -> None:
    registry = Registry.from_entries(
        [
            AlgorithmEntry("ksigma", "warden_algos.algorithms.ksigma:KSigma", "built-in"),
            AlgorithmEntry("test_crash", "warden_test_algos:Crasher", "warden_test_algos 1.0"),
        ]
    )
    assert plugin_algorithms(registry) == {"test_crash"}


def test_a_registry_that_cannot_be_discovered_has_no_plugins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """verify must still report (every default vector will answer INTERNAL and mismatch), not
    crash while choosing which vectors to run."""

    def broken() -> Registry:
        raise RegistryError("algorithm name 'ksigma' is registered twice")

    monkeypatch.setattr(Registry, "discover", staticmethod(broken))
    assert plugin_algorithms() == frozenset()


def test_example_requests_are_still_verified(tmp_path: Path) -> None:
    found, _ = cases(requests=EXAMPLES / "requests", plugins=())
    examples = {c.name for c in found if c.name.startswith("examples/")}
    assert examples == {f"examples/{p.name}" for p in (EXAMPLES / "requests").glob("*.json")}
    assert cases(requests=tmp_path / "missing", plugins=())[0] == cases(plugins=())[0]

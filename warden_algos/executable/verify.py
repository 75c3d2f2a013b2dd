"""Verification before ship: the built executable must answer every shared vector and every
example request byte for byte as the in-process dispatcher does, one-shot and in serve mode.

A vector that needs installed plugins (its ``case.json`` names an environment other than
``default``) is verified when the plugin it calls is installed in the verifying process: the build
froze every algorithm that process's registry sees, and the in-process dispatcher giving the
expected answer sees the same plugins. So a build run with the test plugins on its path covers
ALGORITHM_FAILED and TIMEOUT too; a plain build lists those vectors as skipped, with the reason.
"""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from warden_algos import resources
from warden_algos.dispatcher import Dispatcher
from warden_algos.registry import BUILTIN_ALGORITHMS, Registry, RegistryError
from warden_algos.wire import CODECS, get_codec


@dataclass
class Verification:
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not self.mismatches


@dataclass(frozen=True)
class Case:
    name: str
    format_name: str
    request: bytes
    args: tuple[str, ...]


def plugin_algorithms(registry: Registry | None = None) -> frozenset[str]:
    """Names that installed plugins (not the built-in table) register in ``registry``, by default
    this process's. A registry that cannot even be discovered has no usable plugins: none."""
    if registry is None:
        try:
            registry = Registry.discover()
        except RegistryError:
            return frozenset()
    return frozenset(name for name, entry in registry.entries.items() if entry.source != "built-in")


def cases(
    vectors: Path | None = None,
    requests: Path | None = None,
    plugins: Collection[str] | None = None,
) -> tuple[list[Case], list[str]]:
    """Every runnable vector in every format, and every example request (JSON).

    A vector of another environment than ``default`` runs only when the algorithm it calls comes
    from a plugin in ``plugins`` (by default this process's, see :func:`plugin_algorithms`). One
    that calls a built-in (the broken-registry vector shadows ksigma) needs a registry this
    process does not have, so it is listed apart with the reason, like one whose plugin is absent.
    """
    if plugins is None:
        plugins = plugin_algorithms()
    if vectors is None:
        vectors = resources.vectors()
    found: list[Case] = []
    skipped: list[str] = []
    for folder in sorted(p for p in vectors.iterdir() if (p / "case.json").is_file()):
        meta = json.loads((folder / "case.json").read_text())
        if meta["environment"] != "default":
            algorithm = _requested_algorithm(folder)
            if algorithm not in plugins:
                why = (
                    f"it calls the built-in {algorithm!r}"
                    if algorithm in BUILTIN_ALGORITHMS
                    else f"{algorithm!r} is not an installed plugin here"
                )
                environment = meta["environment"]
                skipped.append(f"{folder.name} (needs the {environment} environment; {why})")
                continue
        for format_name in CODECS:
            request = (folder / f"request.{format_name}").read_bytes()
            found.append(Case(folder.name, format_name, request, tuple(meta["args"])))
    if requests is not None and requests.is_dir():
        for path in sorted(requests.glob("*.json")):
            found.append(Case(f"examples/{path.name}", "json", path.read_bytes(), ()))
    return found, skipped


def _requested_algorithm(folder: Path) -> str | None:
    """The algorithm a vector's JSON request names (None if it names none, or is not an object)."""
    request = orjson.loads((folder / "request.json").read_bytes())
    name = request.get("algorithm") if isinstance(request, dict) else None
    return name if isinstance(name, str) else None


def expected(case: Case) -> bytes:
    timeout = None
    if "--timeout-s" in case.args:
        timeout = float(case.args[case.args.index("--timeout-s") + 1])
    body, _ = Dispatcher(get_codec(case.format_name), timeout_s=timeout).handle(case.request)
    return body


def verify(executable: Path, requests: Path | None = None) -> Verification:
    outcome = Verification()
    found, outcome.skipped = cases(requests=requests)
    for case in found:  # one-shot
        done = subprocess.run(
            [str(executable), "run", "--format", case.format_name, *case.args],
            input=case.request,
            capture_output=True,
            timeout=300,
            check=False,
        )
        outcome.checked += 1
        if done.stdout != expected(case):
            outcome.mismatches.append(f"run {case.name} [{case.format_name}]")
    for format_name in CODECS:  # serve mode: every case of a format through one process
        group = [c for c in found if c.format_name == format_name and not c.args]
        process = subprocess.Popen(
            [str(executable), "serve", "--format", format_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            for case in group:
                process.stdin.write(struct.pack(">I", len(case.request)) + case.request)
                process.stdin.flush()
                header = process.stdout.read(4)
                body = (
                    process.stdout.read(struct.unpack(">I", header)[0]) if len(header) == 4 else b""
                )
                outcome.checked += 1
                if body != expected(case):
                    outcome.mismatches.append(f"serve {case.name} [{format_name}]")
        finally:
            process.stdin.close()
            process.wait(timeout=60)
    return outcome

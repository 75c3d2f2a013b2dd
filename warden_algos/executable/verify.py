"""Verification before ship: the built executable must answer, byte for byte as the in-process
dispatcher does, every request this environment can make of it:

- every shared vector and every SDK example request, one-shot and in serve mode;
- for **every registered algorithm** (built-in or plugin), the conformance kit's cases
  (``warden_algos.testing``) in every wire format, in serve mode;
- every request a plugin ships in ``warden_requests/`` beside its algorithm module (see
  :func:`shipped_requests`), one-shot and in serve mode.

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
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path

import orjson

from warden_algos import resources
from warden_algos.dispatcher import Dispatcher
from warden_algos.registry import BUILTIN_ALGORITHMS, Registry, RegistryError
from warden_algos.server import one_shot_terminator
from warden_algos.wire import CODECS, get_codec

#: The folder, inside the package that holds a plugin's algorithm module, whose ``*.json`` files
#: ``build --verify`` replays through the executable (documented in the README, "Package it").
SHIPPED_REQUESTS_FOLDER = "warden_requests"


@dataclass
class Verification:
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: algorithm -> kind of case ("vector", "example", "conformance", "shipped") -> answers
    per_algorithm: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not self.mismatches

    def count(self, case: Case) -> None:
        self.checked += 1
        self.per_algorithm.setdefault(case.algorithm or "(none)", Counter())[case.kind] += 1

    def summary(self) -> list[str]:
        """One line per algorithm: how many answers of each kind were verified."""
        lines = []
        for algorithm in sorted(self.per_algorithm):
            kinds = self.per_algorithm[algorithm]
            detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            lines.append(f"{algorithm}: {sum(kinds.values())} answers ({detail})")
        return lines


@dataclass(frozen=True)
class Case:
    name: str
    format_name: str
    request: bytes
    args: tuple[str, ...]
    algorithm: str | None = None
    kind: str = "vector"  # vector, example, conformance, shipped
    one_shot: bool = True  # conformance cases run in serve mode only (hundreds of them)


def plugin_algorithms(registry: Registry | None = None) -> frozenset[str]:
    """Names that installed plugins (not the built-in table) register in ``registry``, by default
    this process's. A registry that cannot even be discovered has no usable plugins: none."""
    if registry is None:
        try:
            registry = Registry.discover()
        except RegistryError:
            return frozenset()
    return frozenset(name for name, entry in registry.entries.items() if entry.source != "built-in")


def _json_algorithm(raw: bytes) -> str | None:
    """The algorithm a JSON request names (None if it names none, or is not an object)."""
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    name = request.get("algorithm") if isinstance(request, dict) else None
    return name if isinstance(name, str) else None


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
        algorithm = _json_algorithm((folder / "request.json").read_bytes())
        if meta["environment"] != "default" and algorithm not in plugins:
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
            found.append(
                Case(folder.name, format_name, request, tuple(meta["args"]), algorithm, "vector")
            )
    if requests is not None and requests.is_dir():
        for path in sorted(requests.glob("*.json")):
            raw = path.read_bytes()
            found.append(
                Case(f"examples/{path.name}", "json", raw, (), _json_algorithm(raw), "example")
            )
    return found, skipped


def shipped_requests(registry: Registry, names: Iterable[str]) -> list[Case]:
    """The JSON requests plugins ship in ``warden_requests/`` next to their algorithm module.

    For an algorithm at ``my_package.detector:MyDetector`` that is
    ``my_package/warden_requests/*.json`` (package data, so it is in the wheel). A plugin made of
    a single top-level module has no such folder.
    """
    found: list[Case] = []
    seen: set[str] = set()
    for name in sorted(names):
        entry = registry.entries[name]
        if entry.source == "built-in":
            continue  # the SDK's own examples are verified from examples/requests
        module = entry.target.partition(":")[0]
        if "." not in module:
            continue
        package = module.rsplit(".", 1)[0]
        if package in seen:
            continue
        seen.add(package)
        try:
            folder = importlib_resources.files(package) / SHIPPED_REQUESTS_FOLDER
        except ModuleNotFoundError:
            continue
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir(), key=lambda item: item.name):
            if item.name.endswith(".json") and item.is_file():
                raw = item.read_bytes()
                found.append(
                    Case(
                        f"{package}/{SHIPPED_REQUESTS_FOLDER}/{item.name}",
                        "json",
                        raw,
                        (),
                        _json_algorithm(raw),
                        "shipped",
                    )
                )
    return found


def conformance_cases(registry: Registry, names: Iterable[str]) -> list[Case]:
    """The conformance kit's inputs for each algorithm, with default params.

    They prove the algorithm behaves the same frozen; the vectors already prove every format on
    every code path. So the cases take the formats in turn (case i in format i mod 3): every
    format is exercised for every algorithm at a third of the cost of all of them for all cases.
    """
    from warden_algos.testing.cases import as_request, cases_for

    formats = list(CODECS)
    found: list[Case] = []
    for name in sorted(names):
        try:
            interface = registry.load(name).interface
        except RegistryError:
            continue  # a build refuses such a registry; a verify-only run reports it elsewhere
        for index, case in enumerate(cases_for(interface)):
            request = as_request(name, case, request_id=f"conformance-{name}-{index}")
            format_name = formats[index % len(formats)]
            encoded = get_codec(format_name).encode_request(request)
            found.append(
                Case(f"{name}: {case.name}", format_name, encoded, (), name, "conformance", False)
            )
    return found


def all_cases(
    requests: Path | None, only: Collection[str] | None = None
) -> tuple[list[Case], list[str]]:
    """What :func:`verify` replays: vectors, examples, every algorithm's conformance cases and
    its plugin's shipped requests; with ``only``, just the cases calling those algorithms."""
    found, skipped = cases(requests=requests)
    try:
        registry = Registry.discover()
    except RegistryError as error:
        return found, [*skipped, f"conformance and shipped requests ({error.message})"]
    names = registry.names() if only is None else [n for n in registry.names() if n in only]
    found += shipped_requests(registry, names) + conformance_cases(registry, names)
    if only is not None:
        found = [case for case in found if case.algorithm in only]
    return found, skipped


class Expected:
    """The in-process dispatcher's answers, one dispatcher per (format, timeout)."""

    def __init__(self) -> None:
        self._dispatchers: dict[tuple[str, float | None], Dispatcher] = {}

    def __call__(self, case: Case, one_shot: bool = False) -> bytes:
        from warden_algos.testing.capture import stdout_capture

        timeout = None
        if "--timeout-s" in case.args:
            timeout = float(case.args[case.args.index("--timeout-s") + 1])
        key = (case.format_name, timeout)
        if key not in self._dispatchers:
            self._dispatchers[key] = Dispatcher(get_codec(case.format_name), timeout_s=timeout)
        with stdout_capture():  # a plugin that prints must not write into our stdout
            body, _ = self._dispatchers[key].handle(case.request)
        return body + one_shot_terminator(case.format_name) if one_shot else body


def verify(
    executable: Path, requests: Path | None = None, only: Collection[str] | None = None
) -> Verification:
    outcome = Verification()
    found, outcome.skipped = all_cases(requests, only)
    answer = Expected()
    for case in found:  # one-shot
        if not case.one_shot:
            continue
        done = subprocess.run(
            [str(executable), "run", "--format", case.format_name, *case.args],
            input=case.request,
            capture_output=True,
            timeout=300,
            check=False,
        )
        outcome.count(case)
        if done.stdout != answer(case, one_shot=True):
            outcome.mismatches.append(f"run {case.name} [{case.format_name}] ({case.algorithm})")
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
                outcome.count(case)
                if body != answer(case):
                    outcome.mismatches.append(
                        f"serve {case.name} [{format_name}] ({case.algorithm})"
                    )
        finally:
            process.stdin.close()
            process.wait(timeout=60)
    return outcome

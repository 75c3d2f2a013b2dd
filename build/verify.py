"""Verification before ship: the built executable must answer every shared vector and every
example request byte for byte as the in-process dispatcher does, one-shot and in serve mode."""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from warden_algos import serialization
from warden_algos.dispatcher import Dispatcher
from warden_algos.serialization import CODECS, get_codec

VECTORS = Path(serialization.__file__).resolve().parent / "vectors"


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


def cases(vectors: Path = VECTORS, requests: Path | None = None) -> tuple[list[Case], list[str]]:
    """Every default-environment vector in every format, and every example request (JSON).
    Vectors that need test-only plugins installed cannot run in a frozen build: listed apart."""
    found: list[Case] = []
    skipped: list[str] = []
    for folder in sorted(p for p in vectors.iterdir() if (p / "case.json").is_file()):
        meta = json.loads((folder / "case.json").read_text())
        if meta["environment"] != "default":
            skipped.append(f"{folder.name} (needs the {meta['environment']} environment)")
            continue
        for format_name in CODECS:
            request = (folder / f"request.{format_name}").read_bytes()
            found.append(Case(folder.name, format_name, request, tuple(meta["args"])))
    if requests is not None and requests.is_dir():
        for path in sorted(requests.glob("*.json")):
            found.append(Case(f"examples/{path.name}", "json", path.read_bytes(), ()))
    return found, skipped


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

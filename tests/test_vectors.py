"""The shared test vectors, replayed through the real executable in every wire format.

The Java harness (examples/jvm_host) replays the same files; both sides require the stored bytes
back, so a change to the contract shows up here and in Java at once, and regenerating the vectors
(``python dev/gen_vectors.py``) is a deliberate, reviewed act.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import orjson
import pytest

from warden_algos.interfaces import ErrorCode
from warden_algos.registry import BUILTIN_ALGORITHMS
from warden_algos.server import one_shot_terminator
from warden_algos.wire import CODECS, get_codec

from .conftest import ROOT, ServeProcess, cli, read_frames

VECTORS = ROOT / "serialization" / "vectors"
FORMATS = list(CODECS)


class Vector(NamedTuple):
    name: str
    folder: Path
    case: dict[str, Any]

    def request(self, format_name: str) -> bytes:
        return (self.folder / f"request.{format_name}").read_bytes()

    def response(self, format_name: str) -> bytes:
        return (self.folder / f"response.{format_name}").read_bytes()


def load_vectors() -> list[Vector]:
    return [
        Vector(folder.name, folder, orjson.loads((folder / "case.json").read_bytes()))
        for folder in sorted(VECTORS.iterdir())
        if (folder / "case.json").is_file()
    ]


ALL = load_vectors()


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "vector_generator", ROOT / "dev" / "gen_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_cover_every_builtin_and_every_error_code() -> None:
    codes = {v.case["expect"]["code"] for v in ALL}
    assert {code.value for code in ErrorCode} <= codes
    algorithms = set()
    for vector in ALL:
        request = get_codec("json").decode_request(vector.request("json"))
        if vector.case["expect"]["status"] == "ok":
            algorithms.add(request.algorithm)
    assert set(BUILTIN_ALGORITHMS) <= algorithms


@pytest.mark.parametrize("vector", ALL, ids=lambda v: v.name)
def test_formats_agree_on_every_vector(vector: Vector) -> None:
    """The three stored encodings of one vector decode to the same request and response."""
    requests = [get_codec(f).decode_request(vector.request(f)) for f in FORMATS]
    responses = [get_codec(f).decode_response(vector.response(f)) for f in FORMATS]
    for other in requests[1:]:
        assert canonical(other) == canonical(requests[0])
    for other in responses[1:]:
        assert canonical(other) == canonical(responses[0])
    expect = vector.case["expect"]
    response = responses[0]
    assert response.ok == (expect["status"] == "ok")
    assert (None if response.error is None else response.error.code.value) == expect["code"]
    assert response.request_id == requests[0].request_id


def test_stored_requests_are_what_the_generator_encodes() -> None:
    """Regenerating gives the same request bytes: the vectors are reproducible, not hand-edited."""
    generator = load_generator()
    cases = generator.cases()
    assert sorted(cases) == [v.name for v in ALL]
    for vector in ALL:
        for format_name in FORMATS:
            encoded = get_codec(format_name).encode_request(cases[vector.name]["request"])
            assert encoded == vector.request(format_name), (vector.name, format_name)


@pytest.mark.parametrize(
    ("vector", "format_name"),
    list(itertools.product(ALL, FORMATS)),
    ids=lambda p: p.name if isinstance(p, Vector) else p,
)
def test_one_shot_answers_the_stored_bytes(
    vector: Vector, format_name: str, vector_environments: dict[str, dict[str, str] | None]
) -> None:
    done = cli(
        "run",
        "--format",
        format_name,
        *vector.case["args"],
        stdin=vector.request(format_name),
        env=vector_environments[vector.case["environment"]],
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    # The stored bytes are the bare document (shared with Java and serve); a one-shot JSON answer
    # adds one newline after it, a Thrift one nothing.
    terminator = one_shot_terminator(format_name)
    assert done.stdout.endswith(terminator), done.stdout[-40:]
    answer = done.stdout[: len(done.stdout) - len(terminator)]
    assert_stored_answer(vector, format_name, answer)


def serve_groups() -> Iterator[tuple[str, tuple[str, ...], str, list[Vector]]]:
    """Vectors that can share one serve process: same environment, options and format."""

    def key(v: Vector) -> tuple[str, tuple[str, ...]]:
        return v.case["environment"], tuple(v.case["args"])

    for (environment, args), group in itertools.groupby(sorted(ALL, key=key), key=key):
        members = list(group)
        for format_name in FORMATS:
            yield environment, args, format_name, members


@pytest.mark.parametrize(
    ("environment", "args", "format_name", "members"),
    list(serve_groups()),
    ids=lambda p: p if isinstance(p, str) else "-".join(p) if isinstance(p, tuple) else None,
)
def test_serve_answers_the_stored_bytes_in_one_process(
    environment: str,
    args: tuple[str, ...],
    format_name: str,
    members: list[Vector],
    vector_environments: dict[str, dict[str, str] | None],
) -> None:
    server = ServeProcess("--format", format_name, *args, env=vector_environments[environment])
    try:
        # Every vector twice: answers must not depend on what the process served before.
        # One at a time, as a host does: writing every request before reading would deadlock
        # once the answers (bands of hundreds of points) fill the pipe.
        order = members + members
        frames = []
        for vector in order:
            server.send(vector.request(format_name))
            frames.append(server.receive_raw())
        assert server.close() == 0, server.stderr_tail()
        assert server.proc.stdout is not None
        assert read_frames(server.proc.stdout.read()) == []  # nothing after the last answer
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait()
        server.stderr_file.close()
    assert len(frames) == len(order)
    for vector, body in zip(order, frames, strict=True):
        assert_stored_answer(vector, format_name, body)


def canonical(value: Any) -> Any:
    """A comparable form: maps sorted, arrays as lists, NaN as None (NaN != NaN)."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: canonical(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return sorted((str(k), canonical(v)) for k, v in value.items())
    if isinstance(value, np.ndarray):
        return canonical(value.tolist())
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Enum):
        return value.value
    return value


def assert_stored_answer(vector: Vector, format_name: str, got: bytes) -> None:
    """``got`` is the vector's stored response: byte for byte, or, for a case with
    ``numbers_rtol`` (numbers that depend on the processor in their last bits), the same decoded
    document with every float within that relative tolerance."""
    expected = vector.response(format_name)
    rtol = vector.case.get("numbers_rtol")
    if rtol is None or got == expected:
        assert got == expected, describe_difference(format_name, got, expected)
        return
    codec = get_codec(format_name)
    decoded = canonical(codec.decode_response(got)), canonical(codec.decode_response(expected))
    problems = list(differences(decoded[0], decoded[1], float(rtol)))
    assert not problems, f"{vector.name} {format_name}: {problems[:5]}"


def differences(got: Any, want: Any, rtol: float, at: str = "") -> Iterator[str]:
    """Where two canonical documents differ: any value but a float must be equal, floats within
    ``rtol`` of each other (relative to the larger)."""
    if isinstance(want, float) and isinstance(got, float):
        if not math.isclose(got, want, rel_tol=rtol, abs_tol=0.0):
            yield f"{at}: {got!r} is not within {rtol} of {want!r}"
    elif isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            yield f"{at}: {len(got)} items, expected {len(want)}"
        for i, (a, b) in enumerate(zip(got, want, strict=False)):
            yield from differences(a, b, rtol, f"{at}[{i}]")
    elif isinstance(want, dict) and isinstance(got, dict):
        yield from differences(sorted(got.items()), sorted(want.items()), rtol, at)
    elif isinstance(want, tuple) and isinstance(got, tuple):
        yield from differences(list(got), list(want), rtol, at)
    elif got != want:
        yield f"{at}: {got!r} != {want!r}"


def test_a_tolerant_vector_still_catches_what_matters() -> None:
    """The tolerance is for the last bits of numbers: a number off by more, a missing point, a
    changed field or flag all still fail."""
    want = canonical({"scores": [7.571243818143932], "expected": [49.87814498551287, None]})
    close = canonical({"scores": [7.571243818143935], "expected": [49.87814498551288, None]})
    assert list(differences(close, want, 1e-9)) == []
    for wrong in (
        {"scores": [7.5712438], "expected": [49.87814498551287, None]},
        {"scores": [7.571243818143932], "expected": [49.87814498551287]},
        {"scores": [7.571243818143932], "expected": [49.87814498551287, 1.0]},
        {"scores": [7.571243818143932], "expected": [49.87814498551287, None], "extra": 1},
    ):
        assert list(differences(canonical(wrong), want, 1e-9)), wrong
    tolerant = [v.name for v in ALL if "numbers_rtol" in v.case]
    # prophet: Stan's optimiser; the learned detectors: numpy's exp, tanh and power dispatch to
    # SIMD code chosen by the processor (AVX-512 or not), which may differ in the last bit.
    needs_it = [
        "autoencoder_detect_with_state",
        "isolation_forest_detect_with_state",
        "isolation_forest_matrix_with_state",
        "one_class_svm_detect_with_state",
        "one_class_svm_matrix",
        "one_class_svm_matrix_explanations",
        "one_class_svm_matrix_packed",
        "prophet_defaults",
    ]
    assert sorted(tolerant) == needs_it, "only a case that needs it may be tolerant"


def describe_difference(format_name: str, got: bytes, expected: bytes) -> str:
    codec = get_codec(format_name)
    ends = f"\nlast bytes: got {got[-8:]!r}, expected {expected[-8:]!r}"  # a missing/extra newline
    try:
        decoded = codec.decode_response(got), codec.decode_response(expected)
    except Exception as error:
        return f"undecodable answer ({error}): {got[:300]!r}{ends}"
    return f"got {decoded[0]!r}\nexpected {decoded[1]!r}{ends}"

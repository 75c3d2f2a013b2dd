"""The PyInstaller executable, built once per test run by ``warden-algos build`` (onedir): it runs,
holds exactly the unfrozen registry, answers every vector as the in-process dispatcher does,
ships with a manifest whose checksum matches, and its tarball unpacks to a runnable layout.

The build runs with plugins installed (the misbehaving test algorithms, a plugin whose import can
be broken from outside, and the third-party example package), so the frozen registry holds
built-ins and plugins alike, and every error code can be provoked in the binary itself: a frozen
program differs from ``python -m warden_algos`` in exactly the places these tests go (lazy plugin
imports, re-exec after a hard timeout, where C code's stdout ends up). Where the unfrozen CLI is
the reference, it runs with the same plugins on its path, so both see the same registry.
"""

from __future__ import annotations

import hashlib
import subprocess
import tarfile
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

from warden_algos.executable.verify import cases
from warden_algos.importtrace import ENVIRONMENT_VARIABLE, parse
from warden_algos.interfaces import ErrorCode, InvalidInput
from warden_algos.registry import BUILTIN_ALGORITHMS
from warden_algos.server import one_shot_terminator
from warden_algos.testing.cases import cases_for
from warden_algos.testing.checks import CHECKS
from warden_algos.wire import get_codec

from .conftest import (
    EXAMPLES,
    Built,
    cli,
    detect_request,
    dumps,
    frame,
    rca_request,
    read_frames,
)
from .plugins.warden_fragile_algos import BREAK_IMPORT_ENV, FROZEN_DIFFERS_ENV
from .test_startup import HEAVY, top_level

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "serialization" / "vectors"
THRIFT = "thrift-compact"


def frozen(
    built: Built,
    *args: str,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """The built executable, run once (in the build's environment unless told otherwise)."""
    return subprocess.run(
        [str(built["executable"]), *args],
        input=stdin,
        capture_output=True,
        env=built["env"] if env is None else env,
        timeout=timeout,
        check=False,
    )


def breaking_imports(built: Built) -> dict[str, str]:
    """The build's environment, with test_fragile's module made to fail its import."""
    return {**built["env"], BREAK_IMPORT_ENV: "1"}


def plugin_names(built: Built) -> set[str]:
    """The algorithms the binary holds from plugins rather than from its built-in table."""
    listed = orjson.loads(frozen(built, "list", "--json").stdout)
    return {row["name"] for row in listed if row["source"] != "built-in"}


# --- the build and its verification ---------------------------------------------------------


def verified(built: Built) -> tuple[int, dict[str, str]]:
    """The build's verification: (total answers, algorithm -> its summary line)."""
    lines = built["verify_line"].read_text().splitlines()
    (total,) = [line for line in lines if " answers of " in line]
    assert "0 mismatches" in total
    per_algorithm = {
        line.split()[1].rstrip(":"): line for line in lines if " answers of " not in line
    }
    return int(total.split()[1]), per_algorithm


def test_build_verification_covered_every_vector_a_plugin_build_can_run(built: Built) -> None:
    """With the test plugins frozen in, verify also replays the ALGORITHM_FAILED and TIMEOUT
    vectors; only the broken-registry vector (it needs ksigma shadowed) stays out."""
    assert [s.split(" ")[0] for s in built["skipped"]] == ["internal_duplicate_registration"]
    found, _ = cases(requests=EXAMPLES / "requests", plugins=plugin_names(built))
    assert {"algorithm_failed", "timeout"} <= {case.name for case in found}
    total, per_algorithm = verified(built)
    answers = {name: int(line.split()[2]) for name, line in per_algorithm.items()}
    assert total == sum(answers.values())
    one_shot, served = len(found), len([case for case in found if not case.args])
    vectors_and_examples = sum(
        int(part.split()[0])
        for line in per_algorithm.values()
        for part in line.split("(")[1].rstrip(")").split(", ")
        if part.split()[1] in ("vector", "example")
    )
    assert vectors_and_examples == one_shot + served


def test_build_verification_ran_every_algorithm_and_the_plugins_own_requests(
    built: Built,
) -> None:
    """Every algorithm in the binary, built-in or plugin, answered its conformance cases through
    it; the example plugin's warden_requests/ were replayed one-shot and in serve mode."""
    _, per_algorithm = verified(built)
    listed = orjson.loads(frozen(built, "list", "--json").stdout)
    for row in listed:
        cases_of_interface = len(cases_for(row["interface"]))
        assert f"{cases_of_interface} conformance" in per_algorithm[row["name"]], row["name"]
    shipped = len(list((EXAMPLES / "custom_algorithm").glob("src/*/warden_requests/*.json")))
    assert shipped >= 2
    assert f"{2 * shipped} shipped" in per_algorithm["tukey_fences"]


def test_the_executable_runs_the_conformance_checks_it_can(built: Built) -> None:
    """``check`` in the binary: every check but the import probe, which needs an interpreter
    the executable does not have. tukey_fences is a trainable, causal detector, so every
    other check applies to it, the state checks included."""
    done = frozen(built, "check", "tukey_fences")
    out = done.stdout.decode()
    assert done.returncode == 0, out[-3000:]
    expected = [c.name for c in CHECKS if "detect" in c.interfaces and not c.needs_interpreter]
    assert "check_state_round_trip" in expected and "check_streams_like_batch" in expected
    for name in expected:
        assert name in out, name
    assert "check_import_cost" not in out
    assert f"{len(expected)} passed, 0 failed" in out


def test_verify_catches_a_plugin_that_answers_differently_frozen(
    built: Built, tmp_path: Path
) -> None:
    """test_fragile answers one detection instead of none only when frozen (and told to): the
    binary's answers then differ from the package's, and verify names each case."""
    env = {**built["env"], FROZEN_DIFFERS_ENV: "1"}
    done = cli(
        "build", "--verify-only", str(built["executable"]), "--algorithm", "test_fragile",
        env=env, timeout=600,
    )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr[-3000:]
    mismatches = [line for line in stderr.splitlines() if line.startswith("MISMATCH ")]
    typical = "serve test_fragile: typical series with two spikes"
    assert any(line.startswith(f"MISMATCH {typical} [") for line in mismatches), mismatches
    assert all(line.endswith("(test_fragile)") for line in mismatches)
    # every conformance case but the empty series (nothing to detect either way) differs
    assert len(mismatches) == 11
    assert f"verified {len(mismatches)} answers" not in stderr
    assert f": {len(mismatches)} mismatches" in stderr


def test_build_leaves_the_checkout_as_it_was(built: Built) -> None:
    """PyInstaller's work and output, the baked registry: none of it lands in the source tree
    (build/ is a source folder), so `git status` after a build is what it was before."""
    before, after = built["checkout_changes"]
    assert after == before


def test_frozen_registry_equals_the_unfrozen_one(built: Built) -> None:
    frozen_info = orjson.loads(frozen(built, "version", "--json").stdout)
    unfrozen_info = orjson.loads(cli("version", "--json", env=built["env"]).stdout)
    assert frozen_info["frozen"] is True
    assert frozen_info["algorithms"] == unfrozen_info["algorithms"]
    assert frozen_info["build_time"] is not None
    assert frozen_info["git_commit"] == unfrozen_info["git_commit"]


def test_frozen_list_holds_built_ins_the_example_and_the_test_plugins(built: Built) -> None:
    done = frozen(built, "list", "--json")
    assert done.returncode == 0, done.stderr.decode()
    rows = {row["name"]: row for row in orjson.loads(done.stdout)}
    assert set(BUILTIN_ALGORITHMS) <= set(rows)
    assert rows["tukey_fences"]["source"].startswith("warden-example-tukey ")
    assert rows["tukey_fences"]["interface"] == "detect"
    for name in ("test_sleep", "test_print", "test_crash", "test_stubborn", "test_bad_rca"):
        assert rows[name]["source"].startswith("warden_test_algos "), rows[name]
    assert rows["test_fragile"]["source"].startswith("warden_fragile_algos ")


def test_manifest_describes_the_artifact(built: Built) -> None:
    manifest = orjson.loads(built["manifest"].read_bytes())
    artifact = built["tarball"].read_bytes()
    assert manifest["sha256"] == hashlib.sha256(artifact).hexdigest()
    assert manifest["size"] == len(artifact)
    assert manifest["mode"] == "onedir"
    names = {a["name"] for a in manifest["algorithms"]}
    assert {"ksigma", "prophet", "adtributor", "ensemble", "tukey_fences"} <= names


def test_tarball_unpacks_to_a_runnable_layout(built: Built, tmp_path: Path) -> None:
    with tarfile.open(built["tarball"]) as archive:
        archive.extractall(tmp_path, filter="tar")
    executable = tmp_path / "warden-algos" / "warden-algos"
    request = (EXAMPLES / "requests" / "ksigma.json").read_bytes()
    done = subprocess.run([str(executable), "run"], input=request, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["status"] == "ok"


# --- a third-party plugin, frozen ------------------------------------------------------------


@pytest.mark.parametrize("format_name", ["json", THRIFT])
def test_the_example_plugin_answers_frozen_as_unfrozen(built: Built, format_name: str) -> None:
    request = detect_request("tukey_fences", params={"window": 48, "fence": 2.5})
    body = as_format(dumps(request), format_name)
    frozen_done = frozen(built, "run", "--format", format_name, stdin=body)
    unfrozen_done = cli("run", "--format", format_name, stdin=body, env=built["env"])
    assert frozen_done.returncode == 0, frozen_done.stderr.decode()
    response = get_codec(format_name).decode_response(frozen_done.stdout)
    assert response.error is None, response.error
    assert response.result is not None
    assert request["detect"]["timestamps"][150] in response.result.timestamps.tolist()
    assert frozen_done.stdout == unfrozen_done.stdout


# --- every error code, one-shot --------------------------------------------------------------


def as_format(json_body: bytes, format_name: str) -> bytes:
    """A JSON request re-encoded in ``format_name``; bytes JSON cannot read stay as they are
    (garbage is garbage in every format)."""
    if format_name == "json":
        return json_body
    try:
        request = get_codec("json").decode_request(json_body)
    except InvalidInput:
        return json_body
    return get_codec(format_name).encode_request(request)


def vector_request(vector: str, format_name: str = "json") -> bytes:
    return (VECTORS / vector / f"request.{format_name}").read_bytes()


class ErrorCase(NamedTuple):
    """A request the binary must answer with ``code`` (and ``field``), exit status 0."""

    id: str
    code: ErrorCode
    json: bytes
    vector: str | None = None  # a shared vector holding this request in every format
    field: str | None = None
    args: tuple[str, ...] = ()
    break_import: bool = False  # run with test_fragile's import broken

    @classmethod
    def of_vector(cls, vector: str, code: ErrorCode, field: str | None = None) -> ErrorCase:
        """The vector's request, with the command-line options its case.json asks for."""
        body = vector_request(vector)
        args = tuple(orjson.loads((VECTORS / vector / "case.json").read_bytes())["args"])
        return cls(vector, code, body, vector=vector, field=field, args=args)

    def request(self, format_name: str) -> bytes:
        if self.vector is not None:
            return vector_request(self.vector, format_name)
        return as_format(self.json, format_name)

    @property
    def request_id(self) -> str | None:
        try:
            parsed = orjson.loads(self.json)
        except orjson.JSONDecodeError:
            return None
        return parsed.get("request_id") if isinstance(parsed, dict) else None


ERRORS = [
    ErrorCase("garbage", ErrorCode.INVALID_INPUT, b"\xff\xfe\x00 not a request {"),
    ErrorCase.of_vector(
        "invalid_input_times_not_increasing", ErrorCode.INVALID_INPUT, field="detect.timestamps[7]"
    ),
    ErrorCase.of_vector("unknown_algorithm", ErrorCode.UNKNOWN_ALGORITHM, field="algorithm"),
    ErrorCase.of_vector("invalid_params", ErrorCode.INVALID_PARAMS, field="params.window"),
    ErrorCase.of_vector("algorithm_failed", ErrorCode.ALGORITHM_FAILED),  # test_crash: raise
    ErrorCase(
        "crash_exit",
        ErrorCode.ALGORITHM_FAILED,
        dumps(detect_request("test_crash", params={"mode": "exit"})),
    ),
    ErrorCase.of_vector("timeout", ErrorCode.TIMEOUT),  # soft: test_sleep, --timeout-s 0.2
    ErrorCase(  # hard: the watchdog answers, then ends the process
        "hard_timeout",
        ErrorCode.TIMEOUT,
        dumps(detect_request("test_stubborn", params={"seconds": 60}, request_id="stuck")),
        args=("--timeout-s", "0.3", "--hard-grace-s", "0.5"),
    ),
    ErrorCase.of_vector("incompatible_state", ErrorCode.INCOMPATIBLE_STATE, field="state"),
    ErrorCase.of_vector("state_not_found", ErrorCode.STATE_NOT_FOUND, field="detect.state_sha256"),
    ErrorCase(
        "plugin_import_fails",
        ErrorCode.INTERNAL,
        dumps(detect_request("test_fragile", request_id="fragile")),
        break_import=True,
    ),
]


def test_the_error_cases_cover_every_error_code() -> None:
    assert {case.code for case in ERRORS} == set(ErrorCode)


def run_error_case(built: Built, case: ErrorCase, format_name: str) -> bytes:
    """The binary's stdout for ``case``, after checking it wrote one response and exited 0."""
    env = breaking_imports(built) if case.break_import else built["env"]
    done = frozen(
        built, "run", "--format", format_name, *case.args, stdin=case.request(format_name), env=env
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    response = get_codec(format_name).decode_response(done.stdout)
    assert response.error is not None, response
    assert response.error.code == case.code, response.error
    assert response.error.field == case.field, response.error
    assert response.request_id == case.request_id
    assert b"Traceback" not in done.stdout
    return done.stdout


@pytest.mark.parametrize("case", ERRORS, ids=lambda case: case.id)
def test_every_error_code_frozen_json_as_unfrozen(built: Built, case: ErrorCase) -> None:
    """Same bytes as ``python -m warden_algos run`` with the same plugins and options."""
    stdout = run_error_case(built, case, "json")
    env = breaking_imports(built) if case.break_import else built["env"]
    unfrozen = cli("run", *case.args, stdin=case.json, env=env)
    assert stdout == unfrozen.stdout


@pytest.mark.parametrize("case", ERRORS, ids=lambda case: case.id)
def test_every_error_code_frozen_thrift(built: Built, case: ErrorCase) -> None:
    run_error_case(built, case, THRIFT)


def test_an_algorithm_killing_its_process_gets_no_answer_frozen_or_not(built: Built) -> None:
    """test_crash hard_exit is a segfault seen from outside: no response, a non-zero status
    (the host's cue to report the crash). The binary must not invent an answer either."""
    body = dumps(detect_request("test_crash", params={"mode": "hard_exit"}))
    frozen_done = frozen(built, "run", stdin=body)
    unfrozen_done = cli("run", stdin=body, env=built["env"])
    assert (frozen_done.returncode, frozen_done.stdout) == (70, b"")
    assert (unfrozen_done.returncode, unfrozen_done.stdout) == (70, b"")


# --- serve mode ------------------------------------------------------------------------------


def serve_sequence() -> list[tuple[bytes, ErrorCode | None]]:
    """(request frame body, expected error code or None for ok): ok requests, every error code,
    a hard timeout (the server re-execs itself), then requests that must still be answered."""
    ok = dumps(detect_request(request_id="ok"))
    return [
        (ok, None),
        (b"{not json", ErrorCode.INVALID_INPUT),
        (vector_request("invalid_input_times_not_increasing"), ErrorCode.INVALID_INPUT),
        (dumps(detect_request("missing", request_id="unknown")), ErrorCode.UNKNOWN_ALGORITHM),
        (dumps(detect_request(params={"k": -1}, request_id="params")), ErrorCode.INVALID_PARAMS),
        (dumps(detect_request("test_crash", request_id="crash")), ErrorCode.ALGORITHM_FAILED),
        (dumps(detect_request("test_print", n=30, request_id="print")), None),
        (dumps(rca_request(request_id="rca")), None),
        (dumps(detect_request("tukey_fences", request_id="tukey")), None),
        (
            dumps(detect_request("test_sleep", params={"seconds": 30}, request_id="slow")),
            ErrorCode.TIMEOUT,
        ),
        (dumps(detect_request("test_fragile", request_id="fragile")), ErrorCode.INTERNAL),
        (
            dumps(detect_request("test_stubborn", params={"seconds": 120}, request_id="stuck")),
            ErrorCode.TIMEOUT,
        ),
        (dumps(detect_request(request_id="after-restart")), None),
        (dumps(detect_request("test_fragile", request_id="fragile-again")), ErrorCode.INTERNAL),
        (dumps(rca_request(request_id="rca-again")), None),
        (ok, None),
    ]


#: Long enough for any ok request above (each loads its algorithm inside the deadline).
SERVE_TIMEOUTS = ("--timeout-s", "1.5", "--hard-grace-s", "0.5")


def test_serve_frozen_answers_a_mixed_sequence_as_unfrozen(built: Built) -> None:
    """One process, requests pipelined: every code, a hard timeout after which the executable
    replaces itself (os.execv of a frozen program), and correct answers after that."""
    sequence = serve_sequence()
    stdin = b"".join(frame(body) for body, _ in sequence)
    env = breaking_imports(built)
    done = frozen(built, "serve", *SERVE_TIMEOUTS, stdin=stdin, env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    answers = read_frames(done.stdout)  # fails on any stray byte (test_print's output)
    assert len(answers) == len(sequence)
    for (body, code), answer in zip(sequence, answers, strict=True):
        response = orjson.loads(answer)
        expected_id = None if body.startswith(b"{not") else orjson.loads(body)["request_id"]
        assert response["request_id"] == expected_id
        if code is None:
            assert response["status"] == "ok", response
        else:
            assert response["error"]["code"] == code.value, response
    assert answers[-1] == answers[0]  # the same request, answered the same after the restart
    assert b'"restarted_after":"hard-timeout"' in done.stderr
    unfrozen = cli("serve", *SERVE_TIMEOUTS, stdin=stdin, env=env)
    assert read_frames(unfrozen.stdout) == answers


# --- stdout purity ---------------------------------------------------------------------------


def builtin_vectors() -> dict[str, Path]:
    """One ok vector per built-in algorithm (its ``*_defaults`` one, or the RCA ones)."""
    chosen: dict[str, Path] = {}
    for folder in sorted(p for p in VECTORS.iterdir() if (p / "case.json").is_file()):
        case = orjson.loads((folder / "case.json").read_bytes())
        if case["environment"] != "default" or case["expect"]["status"] != "ok":
            continue
        algorithm = orjson.loads((folder / "request.json").read_bytes())["algorithm"]
        if algorithm not in chosen or folder.name.endswith("_defaults"):
            chosen[algorithm] = folder / "request.json"
    return chosen


BUILTIN_VECTORS = builtin_vectors()


def test_every_builtin_has_a_purity_vector() -> None:
    assert set(BUILTIN_VECTORS) == set(BUILTIN_ALGORITHMS)


def log_lines(stderr: bytes) -> list[dict[str, Any]]:
    """stderr's JSON log records (anything else an algorithm wrote there is skipped)."""
    records = []
    for line in stderr.splitlines():
        if line.startswith(b"{"):
            record = orjson.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


@pytest.mark.parametrize("algorithm", sorted(BUILTIN_VECTORS))
def test_builtin_stdout_is_one_response_and_logs_go_to_stderr(built: Built, algorithm: str) -> None:
    body = BUILTIN_VECTORS[algorithm].read_bytes()
    done = frozen(built, "run", stdin=body)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    response = orjson.loads(done.stdout)  # the whole of stdout is one JSON document
    assert response["status"] == "ok", response
    request_id = orjson.loads(body)["request_id"]
    assert response["request_id"] == request_id
    assert any(
        r.get("request_id") == request_id and r.get("status") == "ok"
        for r in log_lines(done.stderr)
    ), done.stderr.decode()[-2000:]


def test_algorithm_output_never_reaches_stdout_frozen(built: Built) -> None:
    """Python prints, a raw write to fd 1, C's printf and a child process all land on stderr."""
    done = frozen(built, "run", stdin=dumps(detect_request("test_print")))
    assert done.returncode == 0, done.stderr.decode()
    response = orjson.loads(done.stdout)  # fails if anything else was written to stdout
    assert response["status"] == "ok"
    for text in (b"print()", b"sys.stdout.write", b"os.write(1)", b"printf from C", b"child"):
        assert text in done.stderr


def test_prophet_runs_frozen_with_a_clean_stdout(built: Built) -> None:
    done = frozen(built, "run", stdin=vector_request("prophet_defaults"))
    response = orjson.loads(done.stdout)  # the whole of stdout is one JSON document
    assert response["status"] == "ok", response
    assert len(response["detect"]["expected"]) == 600


@pytest.mark.parametrize("format_name", ["json", THRIFT])
def test_a_frozen_ksigma_start_imports_only_what_it_needs(built: Built, format_name: str) -> None:
    """The executable honours WARDEN_IMPORTTIME like ``python -m warden_algos`` (a frozen
    interpreter ignores ``-X importtime``), and its trace holds no library ksigma does not use."""
    request = (VECTORS / "ksigma_spike" / f"request.{format_name}").read_bytes()
    done = frozen(
        built,
        "run",
        "--format",
        format_name,
        stdin=request,
        env={**built["env"], ENVIRONMENT_VARIABLE: "1"},
    )
    assert done.returncode == 0
    stored = (VECTORS / "ksigma_spike" / f"response.{format_name}").read_bytes()
    assert done.stdout == stored + one_shot_terminator(format_name)  # JSON: one newline after it
    modules = parse(done.stderr.decode())
    loaded = top_level(modules)
    assert {"numpy", "pydantic", "orjson"} <= loaded  # the trace is real
    unwanted = {*HEAVY, "thrift"} if format_name == "json" else set(HEAVY)
    assert not loaded & unwanted, sorted(loaded & unwanted)
    plugins = {"warden_test_algos", "warden_fragile_algos", "warden_example_tukey"}
    assert not loaded & plugins  # registered, baked in, and not imported until asked for
    algorithms = {m for m in modules if m.startswith("warden_algos.algorithms.")}
    assert algorithms <= {
        "warden_algos.algorithms.ksigma",
        "warden_algos.algorithms.rolling",
        "warden_algos.algorithms.streaming",
        "warden_algos.algorithms.common",
    }


@pytest.mark.parametrize("command", ["build", "release", "pull"])
def test_package_only_commands_say_where_they_live(built: Built, command: str) -> None:
    """The executable knows every sub-command, but making, shipping and installing executables
    needs the Python package (PyInstaller, boto3): a clear refusal, not a traceback."""
    argv = {"build": [], "release": ["list"], "pull": ["--dest", "/nonexistent"]}[command]
    done = frozen(built, command, *argv)
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"not available in the executable" in done.stderr
    assert b"Traceback" not in done.stderr

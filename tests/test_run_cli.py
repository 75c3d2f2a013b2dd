"""One-shot ``run`` through a real process: every error code, exit status, stdout purity."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden_algos.wire import CODECS, get_codec

from .conftest import (
    EXAMPLES,
    ROOT,
    cli,
    detect_request,
    dumps,
    env_with_path,
    frame,
    install_fake_distribution,
    rca_request,
    read_frames,
)

VECTORS = ROOT / "serialization" / "vectors"


def assert_one_newline(stdout: bytes) -> None:
    """A one-shot JSON answer: the document, then exactly one newline."""
    assert stdout.endswith(b"\n") and not stdout.endswith(b"\n\n"), stdout[-40:]
    assert b"\n" not in stdout[:-1]  # one line: the newline only terminates it


def run_json(request: Any, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    body = request if isinstance(request, bytes) else dumps(request)
    done = cli("run", *args, stdin=body, env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert_one_newline(done.stdout)
    response: dict[str, Any] = orjson.loads(done.stdout)  # the whole of stdout is one response
    return response


def assert_error(response: dict[str, Any], code: str, field: str | None = None) -> None:
    assert response["status"] == "error", response
    assert response["error"]["code"] == code, response
    assert response["error"]["message"]
    if field is not None:
        assert response["error"].get("field") == field, response


def test_run_answers_the_bundled_examples() -> None:
    for path in sorted((EXAMPLES / "requests").glob("*.json")):
        response = run_json(path.read_bytes())
        assert response["status"] == "ok", (path.name, response)
        assert response["request_id"] == orjson.loads(path.read_bytes())["request_id"]


def test_ksigma_flags_the_injected_spike_and_returns_the_band() -> None:
    request = detect_request(params={"window": 50, "k": 4})
    response = run_json(request)
    assert response["status"] == "ok"
    spike_time = request["detect"]["timestamps"][150]
    assert response["detect"]["timestamps"] == [spike_time]
    assert response["detect"]["scores"][0] > 4
    for name in ("expected", "lower", "upper"):
        assert len(response["detect"][name]) == 200
    assert response["detect"]["expected"][0] is None  # warm-up: no opinion yet


def test_include_band_false_drops_the_band() -> None:
    response = run_json(detect_request(include_band=False))
    assert set(response["detect"]) == {"timestamps", "scores"}


def test_rca_ranks_the_cause_first_and_returns_at_most_k() -> None:
    response = run_json(rca_request(k=1))
    assert response["status"] == "ok"
    assert list(response["rca"]["contributions"]) == ["dep=cause"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r["detect"]["values"].__setitem__(3, "7.5"), "detect.values[3]"),
        (lambda r: r["detect"]["values"].__setitem__(4, True), "detect.values[4]"),
        (lambda r: r["detect"]["timestamps"].__setitem__(2, 1.5), "detect.timestamps[2]"),
        (lambda r: r["detect"]["timestamps"].__setitem__(5, 2**63), "detect.timestamps"),
        (lambda r: r["detect"]["timestamps"].__setitem__(9, 0), "detect.timestamps[9]"),
        (lambda r: r["detect"]["values"].pop(), "detect.values"),
        (lambda r: r["detect"].pop("timestamps"), "detect.timestamps"),
        (lambda r: r.__setitem__("interface", "forecast"), "interface"),
        (lambda r: r.__setitem__("surprise", 1), "surprise"),
        (lambda r: r.__setitem__("interface", "rca"), None),
    ],
    ids=[
        "string-value",
        "bool-value",
        "float-timestamp",
        "int64-overflow",
        "not-increasing",
        "length-mismatch",
        "missing-field",
        "unknown-interface",
        "unknown-field",
        "payload-mismatch",
    ],
)
def test_invalid_input_names_the_field(mutate: Any, field: str | None) -> None:
    request = detect_request()
    mutate(request)
    response = run_json(request)
    assert_error(response, "INVALID_INPUT", field)
    assert response["request_id"] == "r1"


def test_infinite_value_is_rejected_with_its_index() -> None:
    values = np.ones(20)
    values[7] = np.inf
    packed = {"dtype": "float64", "base64": base64.b64encode(values.tobytes()).decode()}
    request = detect_request(n=20)
    request["detect"]["values"] = packed
    assert_error(run_json(request), "INVALID_INPUT", "detect.values[7]")


def test_json_literal_infinity_is_rejected() -> None:
    body = dumps(detect_request(n=5)).replace(b"[10.", b"[1e999,10.", 1)
    assert_error(run_json(body), "INVALID_INPUT")


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1,2]", b"null", b"\xff\xfe", b'{"interface": "detect"}']
)
def test_garbage_gets_a_structured_error(body: bytes) -> None:
    assert_error(run_json(body), "INVALID_INPUT")


@pytest.mark.parametrize("format_name", list(CODECS))
def test_one_shot_answer_is_the_serve_body_plus_the_format_terminator(format_name: str) -> None:
    """JSON: the document then one newline (a terminal's next line starts on its own line; a JSON
    reader skips it). Thrift: the message, byte for byte. Serve frames and the stored vectors
    carry the bare document in every format."""
    request = (VECTORS / "ksigma_spike" / f"request.{format_name}").read_bytes()
    stored = (VECTORS / "ksigma_spike" / f"response.{format_name}").read_bytes()
    one_shot = cli("run", "--format", format_name, stdin=request)
    served = cli("serve", "--format", format_name, stdin=frame(request))
    assert one_shot.returncode == 0 and served.returncode == 0, one_shot.stderr.decode()
    (body,) = read_frames(served.stdout)
    assert body == stored
    codec = get_codec(format_name)
    if format_name == "json":
        assert not body.endswith(b"\n")
        assert one_shot.stdout == body + b"\n"
        assert_one_newline(one_shot.stdout)
        assert orjson.loads(one_shot.stdout)["status"] == "ok"
    else:
        assert one_shot.stdout == body  # no extra byte
    decoded = codec.decode_response(one_shot.stdout)
    assert decoded.error is None and codec.encode_response(decoded) == body


@pytest.mark.parametrize("body", [b"{", b"", b'{"interface": "detect"'])
def test_a_json_error_answer_ends_with_one_newline(body: bytes) -> None:
    done = cli("run", stdin=body)
    assert done.returncode == 0
    assert_one_newline(done.stdout)
    assert_error(orjson.loads(done.stdout), "INVALID_INPUT")


@pytest.mark.parametrize("format_name", ["thrift-binary", "thrift-compact"])
def test_a_thrift_error_answer_has_no_newline(format_name: str) -> None:
    codec = get_codec(format_name)
    done = cli("run", "--format", format_name, stdin=b"\xde\xad\xbe\xef")
    assert done.returncode == 0
    response = codec.decode_response(done.stdout)
    assert response.error is not None and response.error.code.value == "INVALID_INPUT"
    assert codec.encode_response(response) == done.stdout  # every byte belongs to the message


def test_oversized_request_is_refused() -> None:
    body = dumps(detect_request(n=120_000))
    assert len(body) > 1024 * 1024
    response = run_json(body, "--max-request-mb", "1")
    assert_error(response, "INVALID_INPUT")
    assert "limit" in response["error"]["message"]


def test_unknown_algorithm_and_interface_mismatch() -> None:
    assert_error(run_json(detect_request(algorithm="nope")), "UNKNOWN_ALGORITHM", "algorithm")
    assert_error(run_json(detect_request(algorithm="correlation")), "UNKNOWN_ALGORITHM")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": 1}, "params.window"),
        ({"window": "60"}, "params.window"),
        ({"windw": 60}, "params.windw"),
        ({"window": 20, "min_periods": 30}, "params"),
    ],
)
def test_invalid_params_name_the_parameter(params: dict[str, Any], field: str) -> None:
    assert_error(run_json(detect_request(params=params)), "INVALID_PARAMS", field)


@pytest.mark.parametrize(
    "mode", ["raise", "exit", "memory", "wrong_type", "bad_timestamp", "nan_score"]
)
def test_failing_algorithm_is_algorithm_failed(plugin_env: dict[str, str], mode: str) -> None:
    done = cli(
        "run", stdin=dumps(detect_request("test_crash", params={"mode": mode})), env=plugin_env
    )
    assert done.returncode == 0
    assert_error(orjson.loads(done.stdout), "ALGORITHM_FAILED")
    assert b"Traceback" not in done.stdout


def test_rca_result_with_foreign_key_is_algorithm_failed(plugin_env: dict[str, str]) -> None:
    request = rca_request()
    request["algorithm"] = "test_bad_rca"
    request["params"] = {}
    done = cli("run", stdin=dumps(request), env=plugin_env)
    assert_error(orjson.loads(done.stdout), "ALGORITHM_FAILED")


def test_sleeping_past_the_timeout_is_timeout(plugin_env: dict[str, str]) -> None:
    request = detect_request("test_sleep", params={"seconds": 30})
    done = cli("run", "--timeout-s", "0.5", stdin=dumps(request), env=plugin_env, timeout=20)
    assert done.returncode == 0
    response = orjson.loads(done.stdout)
    assert_error(response, "TIMEOUT")
    assert response["request_id"] == "r1"


def test_broad_except_in_an_algorithm_does_not_swallow_the_timeout(
    plugin_env: dict[str, str],
) -> None:
    request = detect_request("test_catch_all", params={"seconds": 30})
    done = cli("run", "--timeout-s", "0.3", stdin=dumps(request), env=plugin_env, timeout=20)
    assert_error(orjson.loads(done.stdout), "TIMEOUT")


def test_algorithm_ignoring_the_timeout_is_still_answered(plugin_env: dict[str, str]) -> None:
    request = detect_request("test_stubborn", params={"seconds": 60})
    done = cli(
        "run",
        "--timeout-s",
        "0.3",
        "--hard-grace-s",
        "0.5",
        stdin=dumps(request),
        env=plugin_env,
        timeout=20,
    )
    assert done.returncode == 0
    assert_one_newline(done.stdout)  # the watchdog's answer ends like any other
    assert_error(orjson.loads(done.stdout), "TIMEOUT")


def test_broken_registry_is_internal(tmp_path: Path) -> None:
    install_fake_distribution(tmp_path, "shadowing_plugin", {"ksigma": "os:path"})
    done = cli("run", stdin=dumps(detect_request()), env=env_with_path(tmp_path))
    assert done.returncode == 0
    response = orjson.loads(done.stdout)
    assert_error(response, "INTERNAL")
    assert "registered twice" in response["error"]["message"]


def test_algorithm_output_never_reaches_stdout(plugin_env: dict[str, str]) -> None:
    done = cli("run", stdin=dumps(detect_request("test_print")), env=plugin_env)
    assert done.returncode == 0
    response = orjson.loads(done.stdout)  # fails if anything else was written to stdout
    assert response["status"] == "ok"
    for text in (b"print()", b"sys.stdout.write", b"os.write(1)", b"printf from C", b"child"):
        assert text in done.stderr


def test_logs_are_json_lines_with_the_request_id() -> None:
    done = cli("run", stdin=dumps(detect_request(request_id="trace-me")))
    lines = [orjson.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert any(line.get("request_id") == "trace-me" and line["status"] == "ok" for line in lines)


def test_closed_stdout_exits_non_zero() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "warden_algos", "run"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(dumps(detect_request()), timeout=30)
    assert proc.returncode != 0
    assert b"closed" in err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_any_bytes_get_a_response_or_structured_error(body: bytes) -> None:
    done = cli("run", stdin=body)
    assert done.returncode == 0
    response = orjson.loads(done.stdout)
    assert response["status"] in {"ok", "error"}
    if response["status"] == "error":
        assert response["error"]["code"] in {"INVALID_INPUT", "UNKNOWN_ALGORITHM", "INVALID_PARAMS"}

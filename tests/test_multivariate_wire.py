"""A matrix over the wire: JSON and both Thrift protocols, lists and packed, stateless, fit and
streamed with a state; the answer's contributions are what the detector computed in process;
malformed matrices are INVALID_INPUT naming the field, and a serve process answers on."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.algorithms.one_class_svm import OneClassSVM
from warden_algos.dispatcher import Dispatcher
from warden_algos.interfaces.multivariate import MultivariateResult
from warden_algos.interfaces.run_matrix import (
    run_detect_matrix,
    run_detect_matrix_next,
    run_fit_matrix,
)
from warden_algos.registry import Registry
from warden_algos.wire import DetectPayload, Request, get_codec
from warden_algos.wire.envelope import FitPayload, FitResult

from .conftest import ServeProcess

T0 = 1_700_000_000
COLUMNS = ["inlet", "outlet"]
FORMATS = ["json", "thrift-binary", "thrift-compact"]
PARAMS = {"sigmas": 6.0}


def machine(n: int = 1200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    cycle = np.sin(np.arange(n) * 2 * np.pi / 288)
    matrix = np.column_stack([10 + cycle, 5 + 2 * cycle]) + rng.normal(0, 0.05, (n, 2))
    # out of the outlet's range: within both ranges, two columns that stop agreeing do not say
    # which of them moved (either repaired to agree with the other looks normal)
    matrix[1100, 1] += 6.0
    matrix[1050, 0] = np.nan
    return times, matrix


def dispatcher(format_name: str) -> Dispatcher:
    return Dispatcher(get_codec(format_name), registry=Registry.of([OneClassSVM, KSigma]))


def ask(d: Dispatcher, request: Request) -> Any:
    body, _ = d.handle(d.codec.encode_request(request))
    return d.codec.decode_response(body)


def same(got: MultivariateResult, want: MultivariateResult) -> None:
    assert got.timestamps.tolist() == want.timestamps.tolist()
    assert got.scores.tolist() == want.scores.tolist()
    assert got.contributions.tolist() == want.contributions.tolist()


@pytest.mark.parametrize("packed", [False, True], ids=["lists", "packed"])
@pytest.mark.parametrize("format_name", FORMATS)
def test_a_matrix_is_detected_fitted_and_streamed_over_every_format(
    format_name: str, packed: bool
) -> None:
    times, matrix = machine()
    d = dispatcher(format_name)
    empty = np.empty(0)
    stateless = ask(
        d,
        Request(
            "detect", "one_class_svm",
            DetectPayload([], times, empty, columns=COLUMNS, matrix=matrix), PARAMS,
            packed_arrays=packed,
        ),
    )  # fmt: skip
    assert stateless.ok, stateless.error
    assert isinstance(stateless.result, MultivariateResult)
    same(stateless.result, run_detect_matrix(OneClassSVM(PARAMS), times, matrix, COLUMNS))
    assert stateless.packed_arrays is packed

    fit = Request(
        "fit", "one_class_svm",
        FitPayload([], times[:1000], empty, columns=COLUMNS, matrix=matrix[:1000]), PARAMS,
        packed_arrays=packed,
    )  # fmt: skip
    fitted = ask(d, fit)
    assert fitted.ok, fitted.error
    assert isinstance(fitted.result, FitResult)
    local = run_fit_matrix(OneClassSVM(PARAMS), times[:1000], matrix[:1000], COLUMNS)
    assert fitted.result.state == local.state
    payload = DetectPayload(
        [], times[1000:], empty, state=fitted.result.state, return_state=True,
        columns=COLUMNS, matrix=matrix[1000:],
    )  # fmt: skip
    streamed = ask(d, Request("detect", "one_class_svm", payload, PARAMS, packed_arrays=packed))
    assert streamed.ok, streamed.error
    want, after = run_detect_matrix_next(
        OneClassSVM(PARAMS), times[1000:], matrix[1000:], COLUMNS, local.state
    )
    same(streamed.result, want)
    assert after is not None and streamed.state == after.state
    rows = np.searchsorted(times, streamed.result.timestamps).tolist()
    assert 1100 in rows
    assert COLUMNS[int(streamed.result.contributions[rows.index(1100)].argmax())] == "outlet"


def json_request(detect: dict[str, Any], algorithm: str = "one_class_svm") -> bytes:
    return orjson.dumps(
        {"interface": "detect", "algorithm": algorithm, "params": {}, "detect": detect}
    )


BAD_JSON = {
    "values and matrix": (
        {"timestamps": [1, 2], "values": [1.0, 2.0], "columns": ["a"], "matrix": [[1.0], [2.0]]},
        "detect",
    ),
    "matrix without columns": ({"timestamps": [1, 2], "matrix": [[1.0], [2.0]]}, "detect"),
    "neither": ({"timestamps": [1, 2]}, "detect"),
    "ragged row": (
        {"timestamps": [1, 2], "columns": ["a", "b"], "matrix": [[1.0, 2.0], [1.0]]},
        "detect.matrix[1]",
    ),
    "rows and timestamps": (
        {"timestamps": [1, 2, 3], "columns": ["a"], "matrix": [[1.0], [2.0]]},
        "detect.matrix",
    ),
    "a string cell": (
        {"timestamps": [1, 2], "columns": ["a"], "matrix": [[1.0], ["2"]]},
        "detect.matrix.1.0",
    ),
    "packed of another width": (
        {
            "timestamps": [1, 2],
            "columns": ["a", "b"],
            "matrix": {"dtype": "float64", "base64": "AAAAAAAA8D8AAAAAAAAAQAAAAAAAAAhA"},
        },
        "detect.matrix",
    ),
    "a column twice": (
        {"timestamps": [1, 2], "columns": ["a", "a"], "matrix": [[1.0, 1.0], [2.0, 2.0]]},
        "detect.columns[1]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_a_malformed_matrix_is_invalid_input_naming_the_field(case: str) -> None:
    detect, field = BAD_JSON[case]
    d = dispatcher("json")
    body, _ = d.handle(json_request(detect))
    answer = orjson.loads(body)
    assert answer["error"]["code"] == "INVALID_INPUT", answer
    assert (
        answer["error"]["field"]
        .replace("[", ".")
        .replace("]", "")
        .startswith(field.replace("[", ".").replace("]", ""))
    ), answer


@pytest.mark.parametrize("format_name", ["thrift-binary", "thrift-compact"])
def test_thrift_refuses_values_with_a_matrix_and_a_packed_matrix_of_another_width(
    format_name: str,
) -> None:
    from warden_algos.wire.warden_wire import ttypes as wire

    d = dispatcher(format_name)
    codec = d.codec
    both = wire.Request(
        interface_name="detect", algorithm="one_class_svm",
        detect=wire.DetectPayload(
            timestamps=[1, 2], values=[1.0, 2.0], columns=["a"], matrix=[[1.0], [2.0]]
        ),
    )  # fmt: skip
    odd = wire.Request(
        interface_name="detect", algorithm="one_class_svm",
        detect=wire.DetectPayload(
            timestamps=[1, 2], columns=["a", "b"], matrix_packed=b"\0" * 24
        ),
    )  # fmt: skip
    for message, field in ((both, "detect"), (odd, "detect.matrix")):
        body, _ = d.handle(codec._serialize(message, False))  # type: ignore[attr-defined]
        answer = codec.decode_response(body)
        assert answer.error is not None and answer.error.code.value == "INVALID_INPUT"
        assert answer.error.field == field


def test_a_detector_without_a_matrix_form_says_so_and_serve_answers_on() -> None:
    times, matrix = machine()
    detect = {"timestamps": times.tolist(), "columns": COLUMNS, "matrix": matrix.tolist()}
    server = ServeProcess("--log-level", "error")
    try:
        refused = server.ask(json_request(detect, "ksigma"))
        assert refused["error"]["code"] == "UNKNOWN_ALGORITHM", refused
        assert "cannot score a matrix" in refused["error"]["message"]
        ragged = server.ask(json_request({**detect, "matrix": [[1.0]] * len(times)}))
        assert ragged["error"]["code"] == "INVALID_INPUT"
        good = server.ask(json_request(detect))
        assert good["status"] == "ok", good
        assert len(good["detect"]["contributions"]) == len(good["detect"]["timestamps"])
        assert server.close() == 0
    finally:
        server.close()

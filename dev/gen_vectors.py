"""Regenerate the shared test vectors in serialization/vectors/.

    python dev/gen_vectors.py

Each vector is a folder holding one request and the response the real executable gives to it, in
every wire format (``request.json``, ``request.thrift-binary``, ``request.thrift-compact``, and the
same for ``response.*``), plus ``case.json``: what the case shows, the command-line options it
needs, the installed-plugin environment it needs, and the expected status and error code. The
responses are produced by running ``python -m warden_algos run --format F`` for real. The Python
tests (tests/test_vectors.py) and the Java tests (examples/jvm_host) replay every vector and
require the same bytes back, so both sides agree on the contract byte for byte. The one exception
is a case marked ``numbers_rtol`` in its ``case.json`` (prophet: Stan's optimiser gives results
that differ in the last bits from one processor to another): its answer must decode to the same
document, every number within that relative tolerance.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
#: A vector whose numbers depend on the processor in their last bits (case.json ``numbers_rtol``)
#: is replayed to the same structure and text, every number within this relative tolerance.
NUMBERS_RTOL = 1e-9
HERE = ROOT / "serialization" / "vectors"  # the vectors' folder: data only, no code
sys.path.insert(0, str(ROOT))

from tests.plugins.environments import (  # noqa: E402 - needs the repo root on sys.path
    install_broken_registry,
    install_test_plugins,
)
from warden_algos.interfaces import TimeSeries  # noqa: E402
from warden_algos.server import one_shot_terminator  # noqa: E402
from warden_algos.wire import (  # noqa: E402
    CODECS,
    DetectPayload,
    RCAPayload,
    Request,
    get_codec,
)

T0 = 1_700_000_000
FORMATS = list(CODECS)


def detect(
    algorithm: str, values: list[float], params: dict[str, Any] | None = None, **options: Any
) -> Request:
    timestamps = options.pop("timestamps", None)
    if timestamps is None:
        timestamps = np.array([T0 + 60 * i for i in range(len(values))], dtype=np.int64)
    return Request(
        interface="detect",
        algorithm=algorithm,
        payload=DetectPayload(
            ["host=web-1", "service=checkout"], timestamps, np.array(values, dtype=np.float64)
        ),
        params=params or {},
        request_id=options.pop("request_id", f"vector-{algorithm}"),
        **options,
    )


def wave(n: int, spike_at: int | None = None) -> list[float]:
    values = [100.0 + 5.0 * np.sin(i / 3.0) for i in range(n)]
    if spike_at is not None:
        values[spike_at] += 60.0
    return [round(v, 6) for v in values]


def rca() -> Request:
    n = 40
    times = np.array([T0 + 60 * i for i in range(n)], dtype=np.int64)
    bump = np.zeros(n)
    bump[25:30] = 1.0
    wobble = np.round(np.sin(np.arange(n) * 1.7), 6)
    cause = 10.0 + wobble + 20.0 * bump
    bystander = 10.0 + np.round(np.cos(np.arange(n) * 0.9), 6)
    return Request(
        interface="rca",
        algorithm="correlation",
        payload=RCAPayload(
            metric_of_interest=TimeSeries(
                {"service": "checkout", "metric": "latency"}, times, 100.0 + 2.0 * cause
            ),
            related_metrics=[
                TimeSeries(
                    {"dependency": "db"},
                    times,
                    cause,
                    sizes=np.full(n, 30, dtype=np.int64),
                    variances=np.full(n, 0.5),
                ),
                TimeSeries({"dependency": "cache"}, times, bystander),
            ],
            k=2,
            anomalies=times[[26, 28]],
        ),
        params={"window": 4},
        request_id="vector-correlation",
    )


def daily(n: int = 600, spike_at: int = 500) -> tuple[np.ndarray, list[float]]:
    """Five-minute points over two days: a daily cycle, fixed noise, one spike."""
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    noise = np.random.default_rng(5).normal(0.0, 0.5, n)
    values = 50.0 + 10.0 * np.sin(2 * np.pi * np.arange(n) / 288) + noise
    values[spike_at] += 25.0
    return times, [round(float(v), 6) for v in values]


def sliced_total() -> Request:
    """A total and its slices by country and by device; DE x ios drops at the last hour."""
    n = 288
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    wobble = 1.0 + 0.02 * np.sin(np.arange(n) * 0.37)
    shares = {("US", "ios"): 40.0, ("US", "android"): 30.0, ("DE", "ios"): 20.0}
    shares |= {("DE", "android"): 15.0, ("FR", "ios"): 8.0, ("FR", "android"): 7.0}
    leaves = {key: np.round(level * wobble, 6) for key, level in shares.items()}
    leaves[("DE", "ios")][-12:] *= 0.2
    slices = []
    for axis, names in (("country", ("US", "DE", "FR")), ("device", ("ios", "android"))):
        for name in names:
            total = sum(v for k, v in leaves.items() if k[0 if axis == "country" else 1] == name)
            slices.append(TimeSeries({axis: name}, times, np.round(total, 6)))
    total = np.round(sum(leaves.values()), 6)
    return Request(
        interface="rca",
        algorithm="adtributor",
        payload=RCAPayload(
            metric_of_interest=TimeSeries({"metric": "revenue"}, times, total),
            related_metrics=slices,
            k=3,
            anomalies=times[-12:],
        ),
        params={},
        request_id="vector-adtributor",
    )


def library_cases() -> dict[str, dict[str, Any]]:
    """One successful request per built-in beyond ksigma and correlation, at default params."""
    times, values = daily()
    out: dict[str, dict[str, Any]] = {}
    for name in (
        "mad", "ewma", "level_shift", "seasonal", "spectral_residual", "novelty", "prophet",
        "ensemble", "drift",
    ):  # fmt: skip
        out[f"{name}_defaults"] = {
            "request": detect(name, values, {}, timestamps=times, request_id=f"vector-{name}"),
            "description": f"{name} at its defaults on two days of 5-minute points with a spike",
        }
        if name == "prophet":
            # Stan's optimiser takes CPU-dependent paths (SIMD, FMA): the same install gives
            # bands that differ in the last bits on another processor.
            out[f"{name}_defaults"]["numbers_rtol"] = NUMBERS_RTOL
    for name, params in (("ensemble", {}), ("seasonal", {"periods": [86400]})):
        out[f"{name}_explanations"] = {
            "request": detect(
                name, values, params, timestamps=times, request_id=f"vector-{name}-explained",
                include_explanations=True,
            ),
            "description": f"include_explanations: {name}'s detections each carry an "
            "explanation (band units, "
            + ("the members that voted)" if name == "ensemble" else "the seasonal context)"),
        }  # fmt: skip
    out["adtributor_finds_the_slice"] = {
        "request": sliced_total(),
        "description": "adtributor explains a drop of the total by the country slice DE",
    }
    deviation = rca()._replace(algorithm="deviation", params={}, request_id="vector-deviation")
    out["deviation_ranks_the_cause"] = {
        "request": deviation,
        "description": "deviation ranks the metric that leaves its band first",
    }
    return out


def graph_cases() -> dict[str, dict[str, Any]]:
    """RCA requests carrying a dependency graph (rca.graph): answered by deviation (a near tie
    would go to the ancestor; here there is none, so it answers as deviation_ranks_the_cause
    does) and by graph_residual (db's bump is not what its parent cache predicts), a cycle and
    an unknown key refused."""
    base = rca()._replace(algorithm="deviation", params={})
    moi = base.payload.metric_of_interest.key
    db, cache = "dependency=db", "dependency=cache"

    def with_graph(graph: list[tuple[str, str]], request_id: str) -> Request:
        payload = base.payload._replace(graph=graph)
        return base._replace(payload=payload, request_id=request_id)

    return {
        "deviation_with_graph": {
            "request": with_graph([(cache, db), (db, moi), (cache, moi)], "vector-graph"),
            "description": "an RCA request with a dependency graph (edges from the cause side "
            "to the metric its change propagates to); deviation only breaks near ties with it",
        },
        "graph_residual_with_graph": {
            "request": with_graph([(cache, db), (db, moi), (cache, moi)], "vector-graph")._replace(
                algorithm="graph_residual"
            ),
            "description": "graph_residual: each related metric's residual from what its graph "
            "parents predict; db's bump is not explained by cache, db ranks first",
        },
        "invalid_input_graph_cycle": {
            "request": with_graph([(db, moi), (db, cache), (cache, db)], "vector-graph-cycle"),
            "description": "a dependency graph with a cycle: INVALID_INPUT, field rca.graph, "
            "the message naming the cycle",
        },
        "invalid_input_graph_unknown_key": {
            "request": with_graph([(db, moi), ("dependency=queue", db)], "vector-graph-unknown"),
            "description": "a dependency graph naming a key that is no metric of the request: "
            "INVALID_INPUT, field rca.graph[1].parent",
        },
    }


def state_cases() -> dict[str, dict[str, Any]]:
    """Trained ksigma: a fit, a detect with the fitted state, and the refusals of states."""
    from warden_algos.algorithms.ksigma import KSigma
    from warden_algos.interfaces.run_state import run_fit
    from warden_algos.wire.envelope import FitPayload

    params = {"window": 20, "k": 4.0}
    history = np.array(wave(60), dtype=np.float64)
    times = T0 + 60 * np.arange(70, dtype=np.int64)
    fitted = run_fit(KSigma(params), times[:60], history).state
    following = wave(70, spike_at=65)[60:]
    dims = ["host=web-1", "service=checkout"]

    def scored(**state: Any) -> DetectPayload:
        return DetectPayload(dims, times[60:], np.array(following), **state)

    tampered = fitted[:-1] + bytes([fitted[-1] ^ 1])
    return {
        "ksigma_fit": {
            "request": Request(
                "fit", "ksigma", FitPayload(dims, times[:60], history), params,
                request_id="vector-fit",
            ),
            "description": "fit answers the trained state (bytes), its sha256 and what it saw",
        },
        "ksigma_detect_with_state": {
            "request": Request(
                "detect", "ksigma", scored(state=fitted, return_state=True), params,
                request_id="vector-stream",
            ),
            "description": "detect with the fitted state scores only the new points (a spike) "
            "and returns the state after them",
        },
        "incompatible_state": {
            "request": Request(
                "detect", "ksigma", scored(state=fitted), {"window": 30},
                request_id="vector-incompatible",
            ),
            "description": "a state fitted with other params: INCOMPATIBLE_STATE",
        },
        "state_not_found": {
            "request": Request(
                "detect", "ksigma", scored(state_sha256="0" * 64), params,
                request_id="vector-not-found",
            ),
            "description": "a state named by sha256 that this process does not hold (a one-shot "
            "run holds none): STATE_NOT_FOUND, resend the state",
        },
        "tampered_state": {
            "request": Request(
                "detect", "ksigma", scored(state=tampered), params, request_id="vector-tampered"
            ),
            "description": "a state whose bytes do not match its sha256: INVALID_INPUT",
        },
    }  # fmt: skip


#: Small models for the learned detectors' vectors, so that a state stays a few KB in every format.
LEARNED_VECTOR_PARAMS: dict[str, dict[str, Any]] = {
    "isolation_forest": {"n_estimators": 8, "max_samples": 64},
    "one_class_svm": {"max_fit_windows": 128},
    "autoencoder": {"hidden": 8, "bottleneck": 2, "max_iter": 50, "max_fit_windows": 256},
}


def learned_cases() -> dict[str, dict[str, Any]]:
    """Each learned detector scoring new points with a state fitted on the first 500 points (the
    spike at 500 is new). Scoring a fitted model needs numpy only, so the executable and the JVM
    replay these; fitting needs scikit-learn (the 'learned' extra), here at generation."""
    from warden_algos.interfaces.run_state import run_fit
    from warden_algos.registry import Registry

    times, values = daily()
    registry = Registry.discover()
    out: dict[str, dict[str, Any]] = {}
    for name, params in LEARNED_VECTOR_PARAMS.items():
        algorithm = registry.load(name)(params)
        history = np.array(values[:500], dtype=np.float64)
        fitted = run_fit(algorithm, times[:500], history).state
        payload = DetectPayload([], times[500:], np.array(values[500:]), state=fitted)
        out[f"{name}_detect_with_state"] = {
            "request": Request("detect", name, payload, params, request_id=f"vector-{name}"),
            "description": f"{name} scores 100 new points (a spike first) with a model fitted "
            "on the 500 before them",
            # exp and tanh come from the platform's libm: last bits may differ elsewhere.
            "numbers_rtol": NUMBERS_RTOL,
        }
    return out


def machine(n: int = 400, spike_at: int = 350) -> tuple[np.ndarray, np.ndarray]:
    """Two sensors following one daily cycle (5-minute rows), fixed noise, one missing cell,
    a spike in the second."""
    times = T0 + 300 * np.arange(n, dtype=np.int64)
    cycle = np.sin(2 * np.pi * np.arange(n) / 288)
    noise = np.random.default_rng(6).normal(0.0, 0.05, (n, 2))
    matrix = np.round(np.column_stack([10 + cycle, 5 + 2 * cycle]) + noise, 6)
    matrix[spike_at, 1] += 3.0
    matrix[200, 0] = np.nan
    return times, matrix


def matrix_cases() -> dict[str, dict[str, Any]]:
    """Multivariate requests: a matrix of named columns, answered with each detection's column
    shares; stateless, with a fitted state, and packed."""
    from warden_algos.interfaces.run_matrix import run_fit_matrix
    from warden_algos.registry import Registry

    times, matrix = machine()
    columns = ["inlet", "outlet"]
    empty = np.empty(0)
    forest = {"n_estimators": 8, "max_samples": 64, "sigmas": 2.0}
    model = Registry.discover().load("isolation_forest")(forest)
    fitted = run_fit_matrix(model, times[:300], matrix[:300], columns).state
    stateless = DetectPayload([], times, empty, columns=columns, matrix=matrix)
    streamed = DetectPayload(
        [], times[300:], empty, state=fitted, columns=columns, matrix=matrix[300:]
    )
    return {
        "one_class_svm_matrix": {
            "request": Request(
                "detect", "one_class_svm", stateless, {"sigmas": 6.0},
                request_id="vector-matrix",
            ),
            "description": "one_class_svm on two correlated columns (a missing cell, a spike "
            "in outlet): detections with each column's share",
            "numbers_rtol": NUMBERS_RTOL,
        },
        "one_class_svm_matrix_packed": {
            "request": Request(
                "detect", "one_class_svm", stateless, {"sigmas": 6.0},
                request_id="vector-matrix-packed", packed_arrays=True,
            ),
            "description": "the same matrix packed (rows x columns float64, row-major), "
            "answered packed",
            "numbers_rtol": NUMBERS_RTOL,
        },
        "one_class_svm_matrix_explanations": {
            "request": Request(
                "detect", "one_class_svm", stateless, {"sigmas": 6.0},
                request_id="vector-matrix-explained", include_explanations=True,
            ),
            "description": "include_explanations on a matrix: each detection names its top "
            "columns and their shares",
            "numbers_rtol": NUMBERS_RTOL,
        },
        "isolation_forest_matrix_with_state": {
            "request": Request(
                "detect", "isolation_forest", streamed, forest, request_id="vector-matrix-state"
            ),
            "description": "isolation_forest scores 100 new rows with a model fitted on the 300 "
            "rows before them (its state records the columns)",
            "numbers_rtol": NUMBERS_RTOL,
        },
    }  # fmt: skip


def cases() -> dict[str, dict[str, Any]]:
    times = T0 + 60 * np.arange(20, dtype=np.int64)
    times[7] = times[6]
    non_increasing = detect("ksigma", wave(20), request_id="vector-bad-times", timestamps=times)
    return {
        "ksigma_spike": {
            "request": detect("ksigma", wave(60, spike_at=45), {"window": 20, "k": 4.0}),
            "description": "ksigma flags one spike and returns its band (warm-up points null/NaN)",
        },
        "ksigma_missing_values_packed": {
            "request": detect(
                "ksigma",
                wave(40, spike_at=30)[:12] + [float("nan")] * 3 + wave(40, 30)[15:],
                {"window": 10, "k": 4.0},
                packed_arrays=True,
                request_id="vector-packed",
            ),
            "description": "missing values, arrays packed both ways",
        },
        "ksigma_explanations": {
            "request": detect(
                "ksigma",
                wave(60, spike_at=45),
                {"window": 20, "k": 4.0},
                include_explanations=True,
                request_id="vector-explained",
            ),
            "description": "include_explanations: the spike's value, expected value, band and "
            "band units, and a sentence",
        },
        "ksigma_alerting": {
            "request": detect(
                "ksigma",
                wave(200, spike_at=170),
                {"window": 20, "k": 3.0, "alerting": {"min_history": 50, "window": 100}},
                include_explanations=True,
                request_id="vector-alerting",
            ),
            "description": "params.alerting: one alert per incident, its score calibrated "
            "(1 - tail probability under the recent history), explained from the alert on",
        },
        "ksigma_no_band": {
            "request": detect(
                "ksigma",
                wave(30, spike_at=25),
                {"window": 10},
                include_band=False,
                request_id="vector-no-band",
            ),
            "description": "include_band false: only timestamps and scores come back",
        },
        "correlation_ranks_the_cause": {
            "request": rca(),
            "description": "correlation RCA ranks the injected cause first; sizes and variances",
        },
        "invalid_input_times_not_increasing": {
            "request": non_increasing,
            "description": "times must be strictly increasing: INVALID_INPUT naming the index",
        },
        "unknown_algorithm": {
            "request": detect("no_such_algorithm", wave(5), request_id="vector-unknown"),
            "description": "UNKNOWN_ALGORITHM lists what is registered",
        },
        "invalid_params": {
            "request": detect("ksigma", wave(5), {"window": 1}, request_id="vector-params"),
            "description": "INVALID_PARAMS names the parameter",
        },
        "algorithm_failed": {
            "request": detect("test_crash", wave(5), {"mode": "raise"}, request_id="vector-crash"),
            "environment": "test-plugins",
            "description": "an algorithm that raises: ALGORITHM_FAILED, the process carries on",
        },
        "timeout": {
            "request": detect("test_sleep", wave(5), {"seconds": 30}, request_id="vector-slow"),
            "environment": "test-plugins",
            "args": ["--timeout-s", "0.2"],
            "description": "an algorithm slower than --timeout-s: TIMEOUT",
        },
        "internal_duplicate_registration": {
            "request": detect("ksigma", wave(5), request_id="vector-internal"),
            "environment": "broken-registry",
            "description": "two installed algorithms claim one name: INTERNAL on every request",
        },
        **library_cases(),
        **graph_cases(),
        **state_cases(),
        **learned_cases(),
        **matrix_cases(),
    }


ENVIRONMENTS = {
    "default": None,
    "test-plugins": install_test_plugins,
    "broken-registry": install_broken_registry,
}


def run(request: bytes, format_name: str, args: list[str], env: dict[str, str] | None) -> bytes:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "warden_algos",
            "run",
            "--format",
            format_name,
            "--log-level",
            "warning",
            *args,
        ],
        input=request,
        capture_output=True,
        env=env,
        check=True,
        timeout=60,
    )
    # The stored response is the bare document (as serve frames carry it): without the newline
    # that ends a one-shot JSON answer.
    terminator = one_shot_terminator(format_name)
    assert done.stdout.endswith(terminator), done.stdout[-40:]
    return done.stdout[: len(done.stdout) - len(terminator)]


def main() -> None:
    json_codec = get_codec("json")
    with tempfile.TemporaryDirectory() as scratch:
        envs = {
            name: (install(Path(scratch) / name) if install else None)
            for name, install in ENVIRONMENTS.items()
        }
        for old in HERE.iterdir():
            if old.is_dir() and (old / "case.json").exists():
                shutil.rmtree(old)
        for name, case in cases().items():
            folder = HERE / name
            folder.mkdir()
            environment = case.get("environment", "default")
            args = case.get("args", [])
            expect: dict[str, Any] = {}
            for format_name in FORMATS:
                body = get_codec(format_name).encode_request(case["request"])
                (folder / f"request.{format_name}").write_bytes(body)
                response = run(body, format_name, args, envs[environment])
                (folder / f"response.{format_name}").write_bytes(response)
                if format_name == "json":
                    decoded = json_codec.decode_response(response)
                    expect = {
                        "status": "ok" if decoded.ok else "error",
                        "code": None if decoded.error is None else decoded.error.code.value,
                    }
            meta = {
                "description": case["description"],
                "environment": environment,
                "args": args,
                "expect": expect,
            }
            if "numbers_rtol" in case:
                meta["numbers_rtol"] = case["numbers_rtol"]
            (folder / "case.json").write_bytes(
                orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n"
            )
            print(f"{name}: {expect}")


if __name__ == "__main__":
    main()

"""Hypothesis fuzzing of one built-in algorithm through the JSON dispatcher, in its own process.

    python tests/fuzz_probe.py ALGORITHM MAX_EXAMPLES

Draws params inside the bounds the algorithm declares (extremes included) and requests of every
awkward shape (no points to thousands, one to many series, step of a second to years, spikes,
missing values), sends each through ``Dispatcher.handle`` as the platform would, and prints one
JSON line: per-case worst time, the process's peak RSS, the codes seen, and every case whose
answer was not ``ok``, ``INVALID_INPUT`` or ``INVALID_PARAMS`` (with the request to replay it).
Derandomised, so a CI run is reproducible. Run by tests/test_fuzz_requests.py.
"""

from __future__ import annotations

import resource
import sys
import time
import types
import typing
from typing import Any, Literal, get_args, get_origin

import annotated_types as at
import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warden_algos.dispatcher import Dispatcher
from warden_algos.registry import Registry
from warden_algos.wire import get_codec

ALLOWED = {"ok", "INVALID_INPUT", "INVALID_PARAMS"}
SOFT_TIMEOUT_S = 60.0


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None, bool, bool]:
    low = high = None
    low_open = high_open = False
    for item in metadata:
        if isinstance(item, at.Ge):
            low = item.ge  # type: ignore[assignment]
        elif isinstance(item, at.Gt):
            low, low_open = item.gt, True  # type: ignore[assignment]
        elif isinstance(item, at.Le):
            high = item.le  # type: ignore[assignment]
        elif isinstance(item, at.Lt):
            high, high_open = item.lt, True  # type: ignore[assignment]
    return low, high, low_open, high_open


def _number(annotation: Any, default: Any, metadata: list[Any]) -> st.SearchStrategy[Any] | None:
    low, high, low_open, high_open = _bounds(metadata)
    if annotation is int:
        lo = int(low) + low_open if low is not None else None
        hi = int(high) - high_open if high is not None else None
        if hi is None:
            hi = max(10 * int(default or 1), 1_000_000)
        if lo is None:
            lo = -hi
        return st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi))
    if annotation is float:
        lo_f = float(low) if low is not None else -1e6
        hi_f = float(high) if high is not None else max(10 * float(default or 1), 1e6)
        return st.floats(lo_f, hi_f, exclude_min=low_open, exclude_max=high_open, allow_nan=False)
    return None


def field_strategy(annotation: Any, default: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if annotation is bool:
        return st.booleans()
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(inner) == 1:
            return st.one_of(st.none(), field_strategy(inner[0], default, metadata))
    number = _number(annotation, default, metadata)
    if number is not None:
        return number
    return st.just(default)  # structured params (ensemble members, period lists): their default


def params_strategy(params_model: Any) -> st.SearchStrategy[dict[str, Any]]:
    fields = {}
    for name, info in params_model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if hasattr(default, "model_dump"):
            continue
        if isinstance(default, tuple | list) and default and hasattr(default[0], "model_dump"):
            continue
        fields[name] = st.one_of(
            st.just(default), field_strategy(info.annotation, default, list(info.metadata))
        )
    return st.fixed_dictionaries({}, optional=fields)


STEPS = [1, 60, 300, 86_400, 31_536_000]
LENGTHS = [0, 1, 2, 3, 17, 200, 2_000, 8_000]


@st.composite
def series(draw: Any, length: int | None = None) -> tuple[list[int], list[float | None]]:
    n = draw(st.sampled_from(LENGTHS)) if length is None else length
    step = draw(st.sampled_from(STEPS))
    start = draw(st.sampled_from([0, 1_700_000_000, -1_000_000_000]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    kind = draw(st.sampled_from(["noise", "constant", "spiky", "gappy", "trend"]))
    values = rng.normal(50, 5, n)
    if kind == "constant":
        values = np.full(n, 3.0)
    elif kind == "spiky" and n:
        values[rng.integers(0, n, max(1, n // 100))] += 500
    elif kind == "trend":
        values = values + np.arange(n) * 0.5
    listed: list[float | None] = values.tolist()
    if kind == "gappy":
        listed = [None if i % 3 == 0 else v for i, v in enumerate(listed)]
    return [start + step * i for i in range(n)], listed


def detect_request(draw: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
    times, values = draw(series())
    return {
        "interface": "detect",
        "algorithm": name,
        "params": params,
        "detect": {"dimensions": ["fuzz=1"], "timestamps": times, "values": values},
    }


def rca_request(draw: Any, name: str, params: dict[str, Any]) -> dict[str, Any]:
    n = draw(st.sampled_from([0, 1, 5, 200, 2_000]))
    times, values = draw(series(n))
    related = []
    for index in range(draw(st.integers(0, 6))):
        r_times, r_values = draw(series(draw(st.sampled_from([0, 1, n, n // 2]))))
        dims = {"dc": f"d{index % 3}", "host": f"h{index}"}
        related.append({"dimensions": dims, "times": r_times, "values": r_values})
    anomalies = sorted(set(draw(st.lists(st.sampled_from(times or [0]), max_size=20))))
    return {
        "interface": "rca",
        "algorithm": name,
        "params": params,
        "rca": {
            "metric_of_interest": {"dimensions": {"m": "x"}, "times": times, "values": values},
            "related_metrics": related,
            "k": draw(st.integers(1, 5)),
            "anomalies": anomalies,
        },
    }


def main() -> None:
    name, examples = sys.argv[1], int(sys.argv[2])
    algorithm = Registry.discover().load(name)
    dispatcher = Dispatcher(get_codec("json"), timeout_s=SOFT_TIMEOUT_S)
    stats: dict[str, Any] = {"worst_s": 0.0, "codes": {}, "failures": [], "cases": 0}

    @st.composite
    def requests(draw: Any) -> dict[str, Any]:
        params = draw(params_strategy(algorithm.Params))
        make = detect_request if algorithm.interface == "detect" else rca_request
        return make(draw, name, params)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def one(request: dict[str, Any]) -> None:
        raw = orjson.dumps(request)
        started = time.perf_counter()
        body, outcome = dispatcher.handle(raw)
        seconds = time.perf_counter() - started
        code = str(outcome.code or "ok")
        stats["cases"] += 1
        stats["codes"][code] = stats["codes"].get(code, 0) + 1
        if seconds > stats["worst_s"]:
            stats["worst_s"] = seconds
            stats["worst_params"] = request["params"]
        if code not in ALLOWED and len(stats["failures"]) < 5:
            answer = orjson.loads(body)
            stats["failures"].append(
                {"code": code, "message": answer["error"]["message"][:300], "request": request}
            )

    one()
    stats["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    sys.stdout.write(orjson.dumps(stats).decode() + "\n")


if __name__ == "__main__":
    main()

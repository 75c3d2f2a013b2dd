"""The inputs the conformance kit feeds an algorithm: what production will feed it.

*Typical* cases are ordinary data every algorithm of the interface must answer (an algorithm that
refuses one fails, unless its author declares that refusal). The others are awkward edges (empty,
one point, constant, all missing, extreme magnitudes, irregular or negative times), where a clear
``InvalidInput`` refusal is as good as an answer. ``warden-algos build --verify`` replays the same
cases through the built executable, so they are also plain requests (:func:`as_request`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from warden_algos.interfaces import F64Array, I64Array, TimeSeries
from warden_algos.interfaces.base import Interface
from warden_algos.wire import DetectPayload, RCAPayload, Request

START = 1_700_000_000

#: Where the incident of the "typical series with an incident" case starts, and how long it is.
INCIDENT_START, INCIDENT_POINTS = 250, 12


@dataclass(frozen=True)
class DetectCase:
    name: str
    typical: bool
    timestamps: I64Array
    values: F64Array


@dataclass(frozen=True)
class RCACase:
    name: str
    typical: bool
    metric_of_interest: TimeSeries
    related_metrics: tuple[TimeSeries, ...]
    k: int
    anomalies: I64Array
    #: The request's dependency edges (parent, child), when it carries a graph (rca.graph).
    graph: tuple[tuple[str, str], ...] | None = None


Case = DetectCase | RCACase


@cache
def detect_cases() -> tuple[DetectCase, ...]:
    rng = np.random.default_rng(0)
    n = 500
    regular = START + 60 * np.arange(n, dtype=np.int64)
    wave = 50 + 10 * np.sin(np.arange(n) * 2 * np.pi / 60) + rng.normal(0, 1, n)
    spiky = wave.copy()
    spiky[[100, 300]] += 80
    incident = wave.copy()
    incident[INCIDENT_START : INCIDENT_START + INCIDENT_POINTS] += 80
    missing = spiky.copy()
    missing[rng.choice(n, 50, replace=False)] = np.nan
    irregular = START + np.cumsum(rng.integers(1, 600, n)).astype(np.int64)
    return (
        DetectCase("typical series with two spikes", True, regular, spiky),
        DetectCase("typical series with an incident", True, regular, incident),
        DetectCase("typical series, 10% missing values", True, regular, missing),
        DetectCase("empty series", False, regular[:0], wave[:0]),
        DetectCase("one point", False, regular[:1], wave[:1]),
        DetectCase("two points", False, regular[:2], wave[:2]),
        DetectCase("constant series", False, regular, np.full(n, 7.0)),
        DetectCase("all values missing", False, regular, np.full(n, np.nan)),
        DetectCase("huge values", False, regular, wave * 1e300),
        DetectCase("tiny values", False, regular, wave * 1e-300),
        DetectCase("irregular timestamps", False, irregular, spiky),
        DetectCase("negative timestamps", False, regular - 2 * START, spiky),
    )


@cache
def rca_cases() -> tuple[RCACase, ...]:
    rng = np.random.default_rng(1)
    n = 200
    times = START + 60 * np.arange(n, dtype=np.int64)
    bump = np.zeros(n)
    bump[120:130] = 1.0
    cause = 5 + rng.normal(0, 0.3, n) + 8 * bump
    bystander = 5 + rng.normal(0, 0.3, n)
    moi = TimeSeries({"metric": "moi"}, times, 100 + 4 * cause + rng.normal(0, 0.3, n))
    related = (
        TimeSeries({"dep": "cause"}, times, cause),
        TimeSeries({"dep": "bystander"}, times, bystander),
        TimeSeries({"dep": "gappy"}, times[::3], bystander[::3]),
    )
    nan_moi = moi.values.copy()
    nan_moi[::7] = np.nan
    anomalies = times[[122, 126]]
    empty_moi = TimeSeries(moi.dimensions, times[:0], moi.values[:0])
    return (
        RCACase("typical incident", True, moi, related, 2, anomalies),
        RCACase("k larger than the candidates", True, moi, related, 10, anomalies),
        RCACase("no related metrics", False, moi, (), 3, anomalies),
        RCACase("no anomalies given", False, moi, related, 2, anomalies[:0]),
        RCACase(
            "missing values",
            False,
            TimeSeries(moi.dimensions, times, nan_moi),
            related,
            2,
            anomalies,
        ),
        RCACase("empty metric of interest", False, empty_moi, related, 2, anomalies[:0]),
        RCACase(
            "with a dependency graph",
            True,
            moi,
            related,
            2,
            anomalies,
            graph=(("dep=cause", "metric=moi"), ("dep=bystander", "dep=gappy")),
        ),
        RCACase("with an empty dependency graph", False, moi, related, 2, anomalies, graph=()),
    )


def cases_for(interface: Interface) -> tuple[Case, ...]:
    return detect_cases() if interface == "detect" else rca_cases()


def case_names(interface: Interface) -> list[str]:
    return [case.name for case in cases_for(interface)]


def as_request(
    algorithm: str,
    case: Case,
    params: Mapping[str, Any] | None = None,
    request_id: str | None = None,
) -> Request:
    """The case as the platform would send it (default params unless given)."""
    if isinstance(case, DetectCase):
        return Request(
            interface="detect",
            algorithm=algorithm,
            payload=DetectPayload(["conformance=1"], case.timestamps, case.values),
            params=dict(params or {}),
            request_id=request_id,
        )
    return Request(
        interface="rca",
        algorithm=algorithm,
        payload=RCAPayload(
            case.metric_of_interest,
            list(case.related_metrics),
            case.k,
            case.anomalies,
            graph=None if case.graph is None else list(case.graph),
        ),
        params=dict(params or {}),
        request_id=request_id,
    )

"""Misbehaving algorithms the tests install as a real entry-point plugin (see conftest.py).

Each one stands for something an author's code may do in production: sleep, print, crash, ignore
the deadline, or return something malformed; and one (test_graph_echo) answers what the request's
dependency graph said, so a test can see that a graph crossed the wire intact.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from warden_algos.interfaces import (
    AlgorithmParams,
    DetectAlgorithm,
    DetectResult,
    F64Array,
    I64Array,
    RCAAlgorithm,
    TimeSeries,
    rca_graph,
)


def _nothing(timestamps: I64Array) -> DetectResult:
    return DetectResult(np.empty(0, dtype=np.int64), np.empty(0))


class SleepParams(AlgorithmParams):
    seconds: float = Field(0.0, ge=0)


class Sleeper(DetectAlgorithm[SleepParams]):
    name = "test_sleep"
    summary = "Sleeps for params.seconds, then finds nothing."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        time.sleep(self.params.seconds)
        return _nothing(timestamps)


class Printer(DetectAlgorithm):
    name = "test_print"
    summary = "Writes to stdout from Python, from C, and from a child process."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        print("print() from an algorithm")
        sys.stdout.write("sys.stdout.write from an algorithm\n")
        sys.stdout.flush()
        os.write(1, b"os.write(1) from an algorithm\n")
        libc = ctypes.CDLL(None)
        libc.printf(b"printf from C in an algorithm\n")
        libc.fflush(None)
        subprocess.run(["echo", "a child process writing to its stdout"], check=True)
        return DetectResult.from_mask(timestamps, values > 10, values)


class CrashParams(AlgorithmParams):
    mode: Literal[
        "raise", "exit", "hard_exit", "wrong_type", "bad_timestamp", "nan_score", "memory"
    ] = "raise"


class Crasher(DetectAlgorithm[CrashParams]):
    name = "test_crash"
    summary = "Fails in the way params.mode says."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        mode = self.params.mode
        if mode == "raise":
            raise ValueError("boom from test_crash")
        if mode == "exit":
            sys.exit(3)
        if mode == "hard_exit":  # what a segfault in C code looks like from outside: no answer
            os._exit(70)
        if mode == "memory":
            raise MemoryError("pretend allocation failure")
        if mode == "wrong_type":
            return {"timestamps": []}  # type: ignore[return-value]
        if mode == "bad_timestamp":
            return DetectResult(np.array([timestamps[0] + 1]), np.array([1.0]))
        return DetectResult(timestamps[:1].copy(), np.array([np.nan]))


class Stubborn(DetectAlgorithm[SleepParams]):
    name = "test_stubborn"
    summary = "Ignores the timeout: swallows every exception until params.seconds have passed."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        until = time.monotonic() + self.params.seconds
        # The soft deadline's alarm fires once, at whatever bytecode runs then: every one it can
        # land on is inside the try (a `with suppress` around the sleep alone left the loop test
        # outside it, so under load the alarm sometimes escaped and the soft layer answered).
        while True:
            try:
                while time.monotonic() < until:
                    time.sleep(0.05)
                break
            except BaseException:
                continue
        return _nothing(timestamps)


class CatchAll(DetectAlgorithm[SleepParams]):
    name = "test_catch_all"
    summary = "Sleeps inside a broad `except Exception`, as careless code does."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        try:
            time.sleep(self.params.seconds)
        except Exception:
            return DetectResult(timestamps[:1].copy(), np.array([99.0]))
        return _nothing(timestamps)


class BadRCA(RCAAlgorithm):
    name = "test_bad_rca"
    summary = "Returns a key that is not among the related metrics."

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: AlgorithmParams,
    ) -> Mapping[str, float]:
        return {"no=such": 1.0}


class GraphEcho(RCAAlgorithm):
    name = "test_graph_echo"
    summary = "Scores each related metric by its parents in the request's graph (-1: no graph)."

    def simple_rca(
        self,
        metric_of_interest: TimeSeries,
        related_metrics: list[TimeSeries],
        k: int,
        anomalies: I64Array,
        params: AlgorithmParams,
    ) -> Mapping[str, float]:
        """What the request's graph says, in the answer itself: a graph that lost an edge, or
        turned one around, on the wire changes the scores."""
        graph = rca_graph()
        if graph is None:
            return {series.key: -1.0 for series in related_metrics}
        return {series.key: float(len(graph.parents(series.key))) for series in related_metrics}


class WrongName(DetectAlgorithm):
    name = "something_else"
    summary = "Registered under a name its class does not declare."

    def detect(self, dimensions: list[str], timestamps: I64Array, values: F64Array) -> DetectResult:
        return _nothing(timestamps)

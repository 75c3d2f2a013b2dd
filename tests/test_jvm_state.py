"""Trained algorithms from the JVM: examples/jvm_host's ``Trainer`` and ``SeriesStream`` against
the real executable.

Each test is one JVM (``StateTests SCENARIO``). Python writes the series; Java fits a prefix and
streams the rest point by point through serve workers, writing what it scored; Python checks that
against one batch call of the same detector over the whole series (the streaming contract of
tests/streaming_equivalence.py, here across the pipe, in every wire format). The harness is built
once per session, by test_jvm_host's fixture.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.interfaces import run_detect

from .test_jvm_host import PYTHON_COMMAND, classpath, java
from .test_vectors import ALL

__all__ = ["classpath"]  # the session fixture, imported to be shared (it builds once)

T0 = 1_700_000_000
PARAMS = {"window": 30}
PREFIX = 800
POINTS = 1000  # 200 streamed, one call each
SERIES = 4
FORMATS = ("json", "thrift-binary", "thrift-compact")
# The vectors of trained states; test_jvm_host replays every vector byte for byte from Java.
STATE_VECTORS = {
    "ksigma_fit",
    "ksigma_detect_with_state",
    "incompatible_state",
    "state_not_found",
    "tampered_state",
}


def series(key: int) -> tuple[np.ndarray, np.ndarray]:
    """A wavy series with missing values, and spikes and one incident in the streamed part."""
    rng = np.random.default_rng(key)
    values = 50 + 3 * np.sin(np.arange(POINTS) / 40) + rng.normal(0, 1, POINTS)
    spikes = rng.choice(np.arange(PREFIX + 30, POINTS), 8, replace=False)
    values[spikes] += rng.choice([-1, 1], 8) * rng.uniform(8, 20, 8)
    values[PREFIX + 100 : PREFIX + 104] += 15
    values[rng.choice(POINTS, POINTS // 50, replace=False)] = np.nan
    return T0 + 60 * np.arange(POINTS, dtype=np.int64), values


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("jvm-state-series")
    for key in range(SERIES):
        times, values = series(key)
        lines = (
            f"{t} {'NaN' if np.isnan(v) else repr(float(v))}"
            for t, v in zip(times, values, strict=True)
        )
        (folder / f"series-{key}.txt").write_text("\n".join(lines) + "\n")
    return folder


def scenario(
    classpath: str,
    name: str,
    series_dir: Path,
    out: Path,
    *extra: str,
    env: dict[str, str] | None = None,
) -> str:
    done: subprocess.CompletedProcess[str] = java(
        classpath,
        "warden.algos.host.StateTests",
        name,
        "--command",
        PYTHON_COMMAND,
        "--series",
        str(series_dir),
        "--prefix",
        str(PREFIX),
        "--params",
        orjson.dumps(PARAMS).decode(),
        "--out",
        str(out),
        *extra,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stdout}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert f"{name}: " in done.stdout and " 0 failed" in done.stdout, done.stdout
    return done.stdout


def assert_streamed_like_batch(scored: Path, key: int, count: int = POINTS - PREFIX) -> None:
    """Java's answers for the ``count`` points after the prefix, against one batch call over the
    whole series, as tests/streaming_equivalence.py holds Python to: the same detections, and
    the band within rounding (window sums are centred differently in a chunk than over the whole
    series). Not the scores: an incident's score depends on how much of it a call has seen."""
    times, values = series(key)
    batch = run_detect(KSigma(PARAMS), times, values)
    streamed = times[PREFIX : PREFIX + count]
    anomalies: list[int] = []
    band_times: list[int] = []
    band: list[tuple[float, float, float]] = []
    for line in scored.read_text().splitlines():
        kind, t, *numbers = line.split()
        if kind == "anomaly":
            anomalies.append(int(t))
        else:
            band_times.append(int(t))
            band.append((float(numbers[0]), float(numbers[1]), float(numbers[2])))
    assert band_times == streamed.tolist(), f"{scored.name}: every point scored once, in order"
    in_stream = (batch.timestamps >= streamed[0]) & (batch.timestamps <= streamed[-1])
    assert anomalies == batch.timestamps[in_stream].tolist(), f"{scored.name}: detections"
    scale = 1e-8 * float(np.nanmax(np.abs(values)))
    assert batch.expected is not None and batch.lower is not None and batch.upper is not None
    expected = np.column_stack([batch.expected, batch.lower, batch.upper])[PREFIX : PREFIX + count]
    np.testing.assert_allclose(
        np.array(band), expected, rtol=1e-9, atol=scale, equal_nan=True, err_msg=scored.name
    )


def test_the_series_have_detections_to_stream() -> None:
    """The comparisons below can fail: every streamed part holds detections, not just noise."""
    for key in range(SERIES):
        times, values = series(key)
        batch = run_detect(KSigma(PARAMS), times, values)
        assert (batch.timestamps >= times[PREFIX]).sum() >= 5, key


def test_streaming_point_by_point_detects_as_one_batch_call(
    classpath: str, series_dir: Path, tmp_path: Path
) -> None:
    """Fit on 800 points, stream 200 one call each, the state by reference to a pool of two, in
    each wire format (a re-delivered point skipped, the second half resumed from the stored
    model's bytes); one-shot calls (bytes only) agree."""
    scenario(classpath, "stream", series_dir, tmp_path)
    for format_name in FORMATS:
        assert_streamed_like_batch(tmp_path / f"{format_name}-0.txt", 0)
    assert_streamed_like_batch(tmp_path / "one-shot-0.txt", 0, count=3)


@pytest.mark.parametrize("passing", ["BY_REFERENCE", "BY_REFERENCE_SHA256_ONLY"])
def test_four_streams_on_two_workers_never_miss(
    classpath: str, series_dir: Path, tmp_path: Path, passing: str
) -> None:
    """A busy holder costs bytes to the other worker, never a miss; sha256-only, those bytes come
    with every point sent since them (a replay), and the detections are the same."""
    out = scenario(classpath, "concurrent", series_dir, tmp_path, "--passing", passing)
    assert "concurrent: 800 calls, " in out and f" by reference ({passing})" in out, out
    for key in range(SERIES):
        assert_streamed_like_batch(tmp_path / f"concurrent-{key}.txt", key)


def test_a_lost_state_is_resent_and_the_stream_goes_on(
    classpath: str, series_dir: Path, tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    """A worker restarted in place (hard timeout: same pid, empty cache) misses once and gets the
    bytes; a killed worker's replacement gets bytes without a miss; a worker caching nothing
    misses every reference. The detections never change."""
    out = scenario(classpath, "cache_miss", series_dir, tmp_path, env=plugin_env)
    stats = "resent=1, replayed=0, fetches=0]"
    assert f"restarted in place -> Stats[calls=132, byReference=131, {stats}" in out
    assert f"killed and replaced -> Stats[calls=200, byReference=198, {stats}" in out
    assert_streamed_like_batch(tmp_path / "cache-miss-0.txt", 0)
    assert "--state-cache-mb 0, BY_REFERENCE_SHA256_ONLY -> Stats[calls=20, byReference=0" in out
    for passing in ("by_reference", "by_reference_sha256_only", "by_bytes"):
        assert_streamed_like_batch(tmp_path / f"no-cache-{passing}-0.txt", 0, count=20)


def test_sha256_only_streams_exactly_as_by_bytes(
    classpath: str, series_dir: Path, tmp_path: Path
) -> None:
    """Neither direction carries the state (return_state_sha256_only), yet 300 one-point calls of
    ksigma, mad (every format) and seasonal answer exactly as BY_BYTES, with the same state after
    each point; model() mid-stream and at the end fetches the worker's state as real bytes
    (BY_BYTES' byte for byte); a replay limit of 40 fetches the bytes every 41 calls and buffers
    no more."""
    out = scenario(classpath, "sha256_only", series_dir, tmp_path)
    every_call = "Stats[calls=300, byReference=300, resent=0, replayed=0, fetches=1]"
    bounded = "bounded Stats[calls=300, byReference=299, resent=0, replayed=0, fetches=7]"
    for label in [f"{f} {a}" for f in FORMATS for a in ("ksigma", "mad")] + [
        "thrift-compact seasonal"
    ]:
        assert f"{label} -> {every_call}; {bounded}" in out, out


def test_sha256_only_recovers_misses_and_a_dead_holder_by_replay(
    classpath: str, series_dir: Path, tmp_path: Path
) -> None:
    """A state cache that holds one state of two streams taking turns: each turn's first call
    misses (STATE_NOT_FOUND) and resends the bytes with the points since; a killed holder's
    replacement gets the same. Answers and states are BY_BYTES' (ksigma's scores and band within
    rounding: a point scored within a chunk)."""
    out = scenario(classpath, "sha256_only_replay", series_dir, tmp_path)
    first = "first Stats[calls=300, byReference=239, resent=59, replayed=236, fetches=0]"
    second = "second Stats[calls=300, byReference=240, resent=58, replayed=237, fetches=0]"
    lines = out.splitlines()
    for algorithm in ("ksigma", "mad", "seasonal"):
        stats = [line for line in lines if line.startswith(f"{algorithm} --state-cache-mb 0.0")]
        assert any(line.endswith(f": {first}, {second}") for line in stats), out
        compared = [line for line in stats if " answers, " in line]
        assert len(compared) == 2, out
        if algorithm != "ksigma":
            assert all(line.endswith("identical") for line in compared), compared


def test_state_errors_are_typed_exceptions(
    classpath: str, series_dir: Path, tmp_path: Path
) -> None:
    out = scenario(classpath, "state_errors", series_dir, tmp_path)
    for format_name in FORMATS:
        assert f"{format_name} other params -> IncompatibleState: INCOMPATIBLE_STATE:" in out
        assert f"{format_name} tampered -> InvalidInput: INVALID_INPUT:" in out
    assert "one-shot json other params -> IncompatibleState" in out


def test_the_state_vectors_through_the_typed_api(
    classpath: str, series_dir: Path, tmp_path: Path
) -> None:
    """Every stored state answer reads alike in the three formats; refitting the fit vector's
    history and scoring the detect vector's points reproduce their states byte for byte."""
    by_name = {vector.name: vector for vector in ALL}
    assert set(by_name) >= STATE_VECTORS  # so test_jvm_host's replay covers them too
    folders = [str(by_name[name].folder) for name in sorted(STATE_VECTORS)]
    out = scenario(classpath, "state_vectors", series_dir, tmp_path, *folders)
    assert "incompatible_state -> IncompatibleState INCOMPATIBLE_STATE state" in out
    assert "state_not_found -> StateNotFound STATE_NOT_FOUND detect.state_sha256" in out
    assert "tampered_state -> InvalidInput INVALID_INPUT state" in out

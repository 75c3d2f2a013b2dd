"""The learned detectors (isolation_forest, one_class_svm, autoencoder): their numpy scoring is the
fitted scikit-learn estimator's, they find what they are for, stream the same however the points
are chunked, score a stored model without importing scikit-learn, and refuse crafted states with
structured errors (no code runs, no hang)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warden_algos.algorithms.autoencoder import Autoencoder
from warden_algos.algorithms.isolation_forest import IsolationForest
from warden_algos.algorithms.one_class_svm import OneClassSVM
from warden_algos.interfaces import InvalidInput, run_detect_next, run_fit
from warden_algos.interfaces.state import Seen, decode_state, encode_state
from warden_algos.learned.embedding import embedded, feature_names, no_history
from warden_algos.learned.forest import forest_arrays, forest_scores, max_depth
from warden_algos.learned.mlp import mlp_arrays, reconstructed
from warden_algos.learned.svm import svm_arrays, svm_scores

from .conftest import ServeProcess

T0 = 1_700_000_000
STEP = 300
LEARNED = [IsolationForest, OneClassSVM, Autoencoder]
#: Small models, so the suite's many fits stay fast; the defaults are benchmarked on NAB.
SMALL: dict[str, dict[str, Any]] = {
    "isolation_forest": {"n_estimators": 40},
    "one_class_svm": {"max_fit_windows": 1024},
    "autoencoder": {},  # an undertrained network scores normal windows far out
}


def make(cls: Any, **params: Any) -> Any:
    return cls(**{**SMALL[cls.name], **params})


def daily(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """5-minute points of a daily cycle with noise."""
    rng = np.random.default_rng(seed)
    times = T0 + STEP * np.arange(n, dtype=np.int64)
    values = 10 + np.sin(np.arange(n) * 2 * np.pi / 288) + rng.normal(0, 0.1, n)
    return times, values


# -- the numpy scorers reproduce scikit-learn ------------------------------------------------


@settings(max_examples=12, deadline=None)
@given(
    rows=st.integers(20, 600),
    columns=st.integers(1, 12),
    samples=st.sampled_from([16, 64, 256]),
    seed=st.integers(0, 2**16),
    ties=st.booleans(),
)
def test_forest_scores_equal_scikit_learns(
    rows: int, columns: int, samples: int, seed: int, ties: bool
) -> None:
    from sklearn.ensemble import IsolationForest as SkForest

    rng = np.random.default_rng(seed)
    x = rng.standard_t(3, size=(rows, columns))
    if ties:  # repeated values: rows that land exactly on a threshold
        x = np.round(x, 1)
    forest = SkForest(n_estimators=25, max_samples=min(samples, rows), random_state=seed).fit(x)
    model = forest_arrays(forest)
    probe = np.vstack([x, rng.normal(0, 5, size=(50, columns))])
    ours = forest_scores(model, probe, max_depth(samples))
    np.testing.assert_allclose(ours, -forest.score_samples(probe), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_svm_scores_equal_scikit_learns(seed: int) -> None:
    from sklearn.svm import OneClassSVM as SkSVM

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 6))
    svm = SkSVM(nu=0.1, gamma="scale").fit(x)
    probe = np.vstack([x, rng.normal(0, 3, size=(100, 6))])
    ours = svm_scores(svm_arrays(svm), probe)
    np.testing.assert_allclose(ours, -svm.decision_function(probe), rtol=1e-9, atol=1e-9)


def test_autoencoder_reconstruction_equals_mlp_predict() -> None:
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 10))
    net = MLPRegressor(
        hidden_layer_sizes=(8, 3, 8), activation="tanh", max_iter=400, random_state=0
    )
    net.fit(x, x)
    probe = rng.normal(size=(80, 10))
    ours = reconstructed(mlp_arrays(net), probe)
    np.testing.assert_allclose(ours, net.predict(probe), atol=1e-12)


def test_the_embedding_is_the_window_step_and_offset() -> None:
    values = np.array([1.0, 2.0, 4.0, np.nan, 5.0, 6.0, 7.0])
    rows, complete = embedded(values, 3, no_history(3))
    assert feature_names(3) == ["lag_2", "lag_1", "lag_0", "step", "offset"]
    assert complete.tolist() == [False, False, True, False, False, False, True]
    np.testing.assert_allclose(rows[2], [1.0, 2.0, 4.0, 2.0, 4.0 - 7.0 / 3.0])
    np.testing.assert_allclose(rows[6], [5.0, 6.0, 7.0, 1.0, 1.0])
    # the tail of an earlier chunk fills the lags of the next one's first points
    rows_next, complete_next = embedded(np.array([8.0]), 3, np.array([6.0, 7.0]))
    assert complete_next.tolist() == [True]
    np.testing.assert_allclose(rows_next[0], [6.0, 7.0, 8.0, 1.0, 1.0])


# -- they find what they are for ----------------------------------------------------------------


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_each_finds_a_spike_and_a_flattened_stretch_it_was_not_trained_on(cls: Any) -> None:
    times, values = daily(4000)
    algorithm = make(cls)
    fitted = run_fit(algorithm, times[:3000], values[:3000])
    rest = values[3000:].copy()
    rest[200] += 3.0  # a spike, 30 noise sigmas
    rest[600:640] = rest[600]  # a stuck sensor: a stretch of one repeated value, in range
    result, _ = run_detect_next(algorithm, times[3000:], rest, fitted.state)
    rows = np.searchsorted(times[3000:], result.timestamps)
    assert 200 in rows.tolist(), (cls.name, rows)
    assert ((rows > 600) & (rows < 645)).any(), (cls.name, rows)
    assert len(rows) <= 12, (cls.name, rows)  # and little else on 1,000 normal points


def test_the_autoencoder_band_is_its_reconstruction_of_each_point() -> None:
    times, values = daily(3000)
    result = make(Autoencoder).detect([], times, values)
    assert result.expected is not None and result.lower is not None and result.upper is not None
    ready = ~np.isnan(result.expected)
    assert ready[: Autoencoder.Params().window - 1].sum() == 0  # no full window yet
    assert ready[100:].all()
    error = np.abs(result.expected[ready] - values[ready])
    assert np.median(error) < 0.2  # reconstructs the 0.1-noise series closely
    assert (result.lower[ready] < result.expected[ready]).all()


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_streaming_in_chunks_gives_one_calls_detections(cls: Any) -> None:
    times, values = daily(3600, seed=4)
    values[3100:3104] += 2.5
    values[3300] = np.nan
    algorithm = make(cls, every_point=True)
    fitted = run_fit(algorithm, times[:3000], values[:3000])
    whole, after_whole = run_detect_next(algorithm, times[3000:], values[3000:], fitted.state)
    state = fitted.state
    found_t: list[int] = []
    found_s: list[float] = []
    rng = np.random.default_rng(0)
    start = 3000
    while start < 3600:
        end = min(3600, start + int(rng.integers(1, 90)))
        part, after = run_detect_next(algorithm, times[start:end], values[start:end], state)
        assert after is not None
        state = after.state
        found_t += part.timestamps.tolist()
        found_s += part.scores.tolist()
        start = end
    assert found_t == whole.timestamps.tolist()
    assert found_s == whole.scores.tolist()  # the same bytes, not just close
    assert after_whole is not None and state == after_whole.state
    assert len(found_t) > 0


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_a_short_history_fits_no_model_and_scores_nothing(cls: Any) -> None:
    times, values = daily(40)
    algorithm = make(cls)
    fitted = run_fit(algorithm, times, values)
    assert decode_state(fitted.state).fields["fitted"] is False
    later, new = daily(300, seed=1)
    result, after = run_detect_next(algorithm, later + 10**6, new * 100, fitted.state)
    assert result.timestamps.size == 0 and after is not None


@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_missing_and_huge_values_get_answers_not_exceptions(cls: Any) -> None:
    times, values = daily(1500)
    algorithm = make(cls)
    fitted = run_fit(algorithm, times[:1000], values[:1000])
    rest = values[1000:].copy()
    rest[10:20] = np.nan
    rest[100] = 1e300
    rest[200] = -1e308
    result, _ = run_detect_next(algorithm, times[1000:], rest, fitted.state)
    rows = np.searchsorted(times[1000:], result.timestamps).tolist()
    assert np.isfinite(result.scores).all()
    assert {100, 200} <= set(rows), rows
    assert not any(10 <= r < 20 for r in rows)
    every_nan = np.full(500, np.nan)
    assert make(cls).detect([], times[:500], every_nan).timestamps.size == 0


def test_scoring_a_stored_model_does_not_import_scikit_learn(tmp_path: Path) -> None:
    times, values = daily(2000)
    blobs = {}
    for cls in LEARNED:
        blobs[cls.name] = run_fit(make(cls), times[:1500], values[:1500]).state
        (tmp_path / f"{cls.name}.state").write_bytes(blobs[cls.name])
    np.save(tmp_path / "times.npy", times[1500:])
    np.save(tmp_path / "values.npy", values[1500:])
    code = (
        "import sys, json, numpy as np\n"
        "from pathlib import Path\n"
        "from warden_algos.registry import Registry\n"
        "from warden_algos.interfaces import run_detect_next\n"
        f"root = Path({str(tmp_path)!r})\n"
        "t, v = np.load(root / 'times.npy'), np.load(root / 'values.npy')\n"
        f"small = {SMALL!r}\n"
        "found = {}\n"
        "for name in small:\n"
        "    algorithm = Registry.discover().load(name)(**small[name])\n"
        "    result, _ = run_detect_next(algorithm, t, v, (root / f'{name}.state').read_bytes())\n"
        "    found[name] = result.timestamps.tolist()\n"
        "print(json.dumps({'sklearn': 'sklearn' in sys.modules, 'found': found}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    import json

    answer = json.loads(done.stdout)
    assert answer["sklearn"] is False
    for cls in LEARNED:  # and it scores as the process that fitted it does
        here, _ = run_detect_next(make(cls), times[1500:], values[1500:], blobs[cls.name])
        assert answer["found"][cls.name] == here.timestamps.tolist()


# -- crafted states -----------------------------------------------------------------------------


def recrafted(cls: Any, blob: bytes, **changes: Any) -> bytes:
    """``blob`` with some fields replaced, re-encoded with a valid content hash: what an attacker
    who can write the bucket can produce."""
    decoded = decode_state(blob)
    fields = {**decoded.fields, **changes}
    state = cls.State.model_validate(fields)
    info = decoded.info
    return encode_state(info.algorithm, info.state_version, info.params, state, Seen(*info.seen))


@pytest.fixture(scope="module")
def fitted_blobs() -> dict[str, bytes]:
    times, values = daily(1200)
    return {cls.name: run_fit(make(cls), times, values).state for cls in LEARNED}


def forest_cycle(fields: dict[str, Any]) -> dict[str, Any]:
    left = np.array(fields["forest_left"], copy=True)
    inner = int(np.flatnonzero(left > 0)[3])
    left[inner] = inner  # a node that is its own child: a walk would never end
    return {"forest_left": left}


def forest_bad_feature(fields: dict[str, Any]) -> dict[str, Any]:
    feature = np.array(fields["forest_feature"], copy=True)
    feature[0] = 10_000  # a column the rows do not have
    return {"forest_feature": feature}


def forest_deep(fields: dict[str, Any]) -> dict[str, Any]:
    n = 5000  # one tree as a chain: deeper and larger than max_samples allows
    left = np.where(np.arange(n) < n - 1, np.arange(1, n + 1), -1).astype(np.int32)
    left[-2] = n - 1
    right = left.copy()
    right[:-1] = np.minimum(np.arange(2, n + 1), n - 1)
    right[-1] = -1
    feature = np.where(left >= 0, 0, -1).astype(np.int32)
    roots = np.array(fields["forest_roots"], copy=True)
    return {
        "forest_left": left,
        "forest_right": right,
        "forest_feature": feature,
        "forest_value": np.zeros(n),
        "forest_roots": np.zeros(roots.shape, dtype=np.int32),
    }


CRAFTED = {
    "isolation_forest": {
        "cycle": forest_cycle,
        "feature out of range": forest_bad_feature,
        "a chain 5,000 deep": forest_deep,
        "NaN threshold": lambda f: {"forest_value": np.full_like(f["forest_value"], np.nan)},
    },
    "one_class_svm": {
        "vectors of other width": lambda f: {"svm_vectors": np.ones((3, 2))},
        "a million support vectors": lambda f: {
            "svm_vectors": np.zeros((1_000_000, f["svm_vectors"].shape[1]), dtype=np.float32),
            "svm_weights": np.zeros(1_000_000, dtype=np.float32),
        },
        "negative gamma": lambda f: {"svm_offset": np.array([0.0, -1.0])},
    },
    "autoencoder": {
        "a layer of other shape": lambda f: {"mlp_w1": np.ones((4, 4))},
        "infinite weights": lambda f: {"mlp_w0": np.full_like(f["mlp_w0"], np.inf)},
        "zero spread": lambda f: {"feature_spread": np.zeros_like(f["feature_spread"])},
        "tail of other length": lambda f: {"tail": np.zeros(3)},
    },
}


@pytest.mark.parametrize(("name", "case"), [(n, c) for n, cases in CRAFTED.items() for c in cases])
def test_a_crafted_model_is_refused_before_it_is_evaluated(
    fitted_blobs: dict[str, bytes], name: str, case: str
) -> None:
    cls = next(c for c in LEARNED if c.name == name)
    blob = fitted_blobs[name]
    bad = recrafted(cls, blob, **CRAFTED[name][case](decode_state(blob).fields))
    times, values = daily(50, seed=5)
    with pytest.raises(InvalidInput) as refused:
        run_detect_next(make(cls), times + 10**7, values, bad)
    assert refused.value.field == "state"
    assert (
        "malformed" in str(refused.value)
        or "scaling" in str(refused.value)
        or "tail" in str(refused.value)
    )


def test_a_state_holding_a_pickle_runs_no_code(
    tmp_path: Path, fitted_blobs: dict[str, bytes]
) -> None:
    """A pickle that would create a file when loaded, put where the forest's nodes are: it is
    bytes to the state reader, never unpickled, and the detector refuses the arrays."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    raw = np.frombuffer(pickle.dumps(Payload()), dtype=np.uint8).copy()
    bad = recrafted(IsolationForest, fitted_blobs["isolation_forest"], forest_value=raw)
    times, values = daily(50, seed=5)
    with pytest.raises(InvalidInput):
        run_detect_next(make(IsolationForest), times + 10**7, values, bad)
    assert not marker.exists()


def test_a_serve_process_refuses_a_crafted_forest_and_answers_the_next_request(
    fitted_blobs: dict[str, bytes],
) -> None:
    import base64

    import orjson

    blob = fitted_blobs["isolation_forest"]
    bad = recrafted(IsolationForest, blob, **forest_cycle(decode_state(blob).fields))
    times, values = daily(20, seed=5)

    def request(state: bytes) -> bytes:
        detect = {
            "timestamps": (times + 10**7).tolist(),
            "values": values.tolist(),
            "state": base64.b64encode(state).decode(),
        }
        return orjson.dumps(
            {
                "interface": "detect",
                "algorithm": "isolation_forest",
                "params": SMALL["isolation_forest"],
                "detect": detect,
            }
        )

    server = ServeProcess("--log-level", "error")
    try:
        refused = server.ask(request(bad))
        assert refused["status"] == "error" and refused["error"]["code"] == "INVALID_INPUT"
        assert refused["error"]["field"] == "state", refused
        good = server.ask(request(blob))
        assert good["status"] == "ok", good
        assert server.close() == 0
    finally:
        server.close()


HUGE_CASES = {
    "a constant 1e300": lambda: np.full(600, 1e300),
    "zeros and a 1e160 spike": lambda: np.where(np.arange(600) == 500, 1e160, 0.0),
    "noise and a 1e80 spike": lambda: np.where(
        np.arange(600) == 500, 1e80, np.random.default_rng(0).normal(0, 1, 600)
    ),
    "noise and a 1e160 spike": lambda: np.where(
        np.arange(600) == 500, 1e160, np.random.default_rng(0).normal(0, 1, 600)
    ),
}


@pytest.mark.parametrize("case", list(HUGE_CASES))
@pytest.mark.parametrize("cls", LEARNED, ids=lambda c: c.name)
def test_huge_values_fit_a_usable_state_or_a_clear_refusal(cls: Any, case: str) -> None:
    """Values near float64's limit overflow steps, spreads and scores: the fit must still give
    a state its own checks accept (and a spike is found), never a state the next call refuses."""
    from warden_algos.interfaces import run_detect

    values = HUGE_CASES[case]()
    times = T0 + STEP * np.arange(600, dtype=np.int64)
    algorithm = make(cls)
    result = run_detect(algorithm, times, values)
    assert np.isfinite(result.scores).all()
    if "spike" in case and cls is not IsolationForest:  # the forest is scale-free: no quality
        assert 500 in np.searchsorted(times, result.timestamps).tolist(), case  # claim here
    fitted = run_fit(algorithm, times[:550], values[:550])
    later, _ = run_detect_next(algorithm, times[550:], values[550:], fitted.state)
    assert np.isfinite(later.scores).all()

"""The model store: push, read, history and roll back, on S3 (moto_server) and a local folder.

Most behaviour tests run on both backends (the ``backend`` fixture), since both must give the
same guarantees: content-addressed immutable blobs, one pointer per series moved by conditional
writes, and a history from which no move is ever lost. The helpers here are shared by the other
``test_model_store_*`` files.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import pytest

from warden_algos.algorithms.ksigma import KSigma
from warden_algos.delivery.config import ReleaseConfig
from warden_algos.interfaces.run_state import run_detect_next, run_fit
from warden_algos.models_folder import params_id
from warden_algos.modelstore.local import FolderObjects
from warden_algos.modelstore.records import ModelStoreError
from warden_algos.modelstore.s3 import S3Objects
from warden_algos.modelstore.store import ModelStore, SeriesId

from .conftest import BUCKET, cli
from .s3_server import CREDENTIALS

T0 = 1_700_000_000
KSIGMA = SeriesId("ksigma", params_id(KSigma().get_params()), "host=web-1")


class Backend(NamedTuple):
    name: str
    store: ModelStore
    flags: list[str]  # what the CLI needs to reach the same store
    env: dict[str, str]


def s3_backend(endpoint: str, prefix: str, jobs: int = 8) -> Backend:
    config = ReleaseConfig(bucket=BUCKET, prefix=prefix, endpoint_url=endpoint)
    store = ModelStore(S3Objects(config.client(), BUCKET), prefix, jobs=jobs)
    flags = ["--bucket", BUCKET, "--prefix", prefix, "--endpoint-url", endpoint]
    return Backend("s3", store, flags, {**os.environ, **CREDENTIALS})


def local_backend(root: Path) -> Backend:
    return Backend(
        "local", ModelStore(FolderObjects(root)), ["--store-dir", str(root)], {**os.environ}
    )


@pytest.fixture(params=["s3", "local"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "s3":
        return s3_backend(request.getfixturevalue("s3_endpoint"), request.getfixturevalue("prefix"))
    return local_backend(tmp_path / "store")


def models(
    backend: Backend, *args: str, actor: str = "trainer-1", timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """``warden-algos models ARGS`` against ``backend``'s store, as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "warden_algos", "models", *args, *backend.flags],
        capture_output=True,
        env={**backend.env, "WARDEN_RELEASE_ACTOR": actor},
        timeout=timeout,
        check=False,
    )


def models_process(backend: Backend, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "warden_algos", "models", *args, *backend.flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=backend.env,
    )


def series(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A noisy level with a few spikes: ksigma finds them."""
    rng = np.random.default_rng(seed)
    values = 50 + rng.normal(0, 1, n)
    values[rng.choice(n, max(1, n // 100), replace=False)] += 15
    values[-30] += 20  # and one near the end, where a stored model scores new points
    return T0 + 60 * np.arange(n, dtype=np.int64), values


def fitted(seed: int = 0, n: int = 120, **params: Any) -> bytes:
    """A small ksigma state; another seed gives other bytes."""
    return run_fit(KSigma(params), *series(n, seed)).state


def one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    message = done.stderr.decode()
    assert "Traceback" not in message, message
    assert len(message.strip().splitlines()) == 1, message
    return message


# pushing -------------------------------------------------------------------------------------


def test_pushed_then_synced_models_score_detect_requests_by_series_key(
    backend: Backend, tmp_path: Path
) -> None:
    times, values = series(1500, seed=1)
    state = tmp_path / "web-1.state"
    state.write_bytes(run_fit(KSigma(), times[:1400], values[:1400]).state)
    done = models(
        backend,
        "push",
        "--state",
        str(state),
        "--key",
        "host=web-1",
        "--algorithm",
        "ksigma",
        "--why",
        "first model",
        "--json",
    )
    assert done.returncode == 0, done.stderr.decode()
    pushed = orjson.loads(done.stdout)
    assert pushed["moved"] and pushed["move"]["generation"] == 1
    assert pushed["move"]["who"] == "trainer-1" and pushed["move"]["why"] == "first model"
    node = tmp_path / "node"
    done = models(backend, "sync", "--dest", str(node), "--json")
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout)["installed"] == 1
    request = {
        "interface": "detect",
        "algorithm": "ksigma",
        "detect": {
            "timestamps": times[1400:].tolist(),
            "values": values[1400:].tolist(),
            "model": "host=web-1",
        },
    }
    ran = cli("run", "--models-dir", str(node), "--log-level", "error", stdin=orjson.dumps(request))
    answer = orjson.loads(ran.stdout)
    assert answer["status"] == "ok", answer
    expected, _ = run_detect_next(
        KSigma(), times[1400:], values[1400:], state.read_bytes(), return_state=False
    )
    assert answer["detect"]["timestamps"] == expected.timestamps.tolist()
    assert expected.timestamps.size  # the stored model did find the spikes


def test_a_model_is_stored_once_under_its_sha256_and_a_repeat_push_moves_nothing(
    backend: Backend,
) -> None:
    import hashlib

    store, blob = backend.store, fitted(1)
    first = store.push(blob, "host=web-1", why="first")
    sha256 = hashlib.sha256(blob).hexdigest()
    assert first.move is not None and first.pointer.sha256 == sha256
    assert store.objects.get(store.blob_key(sha256))[0] == blob  # type: ignore[index]
    again = store.push(blob, "host=web-1", why="same bytes")
    assert again.move is None and again.pointer == first.pointer
    assert len(store.history(KSIGMA)) == 1
    assert first.pointer.state.seen_points == 120  # what the blob says, kept in the pointer


@pytest.mark.parametrize(
    ("blob", "kwargs", "message"),
    [
        (b"\x80\x04 not a state", {}, "not a usable state: INVALID_INPUT"),
        (fitted(2), {"algorithm": "mad"}, "fitted by 'ksigma', not 'mad'"),
        (fitted(2), {"params": {**KSigma({"window": 30}).get_params()}}, "other params"),
        (fitted(2), {"why": " "}, "say why"),
    ],
    ids=["garbage", "other-algorithm", "other-params", "no-why"],
)
def test_a_push_is_refused_unless_the_state_is_sound_and_of_the_named_algorithm_and_params(
    backend: Backend, blob: bytes, kwargs: dict[str, Any], message: str
) -> None:
    options: dict[str, Any] = {"why": "test", **kwargs}
    with pytest.raises(ModelStoreError, match=message):
        backend.store.push(blob, "host=web-1", **options)
    assert backend.store.objects.keys(backend.store.root) == []  # nothing written


def test_models_of_other_params_or_keys_are_other_series(backend: Backend) -> None:
    store = backend.store
    store.push(fitted(1), "host=web-1", why="a")
    store.push(fitted(1, window=30), "host=web-1", why="b")
    store.push(fitted(1), "host=web-2", why="c")
    listed = store.pointers()
    assert len(listed) == 3
    assert {p.series_key for p in listed} == {"host=web-1", "host=web-2"}  # type: ignore[union-attr]
    assert len(store.pointers(series_keys=["host=web-1"])) == 2
    assert store.pointers(algorithms=["mad"]) == []


def test_concurrent_pushes_to_one_series_are_all_in_its_history(backend: Backend) -> None:
    store = backend.store
    blobs = [[fitted(100 * thread + i) for i in range(3)] for thread in range(8)]
    start = threading.Barrier(len(blobs))
    failures: list[BaseException] = []

    def pusher(mine: list[bytes]) -> None:
        start.wait()
        for blob in mine:
            try:
                store.push(blob, "host=web-1", why="race", who=f"pusher-{id(mine)}")
            except BaseException as error:  # reported below
                failures.append(error)

    threads = [threading.Thread(target=pusher, args=(mine,)) for mine in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert_complete_history(store, KSIGMA, pushed=[blob for mine in blobs for blob in mine])


def assert_complete_history(store: ModelStore, series_id: SeriesId, pushed: list[bytes]) -> None:
    """Every push is a move; the moves chain (each from the one before) to the pointer."""
    import hashlib

    moves = store.history(series_id)
    assert [move.generation for move in moves] == list(range(1, len(pushed) + 1))
    assert {move.to_sha256 for move in moves} == {hashlib.sha256(b).hexdigest() for b in pushed}
    assert moves[0].from_sha256 is None
    for before, after in itertools.pairwise(moves):
        assert after.from_sha256 == before.to_sha256
    current = store.pointer(series_id)
    assert current is not None and current.sha256 == moves[-1].to_sha256
    prefix = store.history_prefix(series_id)
    assert len(store.objects.keys(prefix)) == len(pushed)  # every entry written, none pending


#: A pusher process: opens the store, reads its states, waits for the start flag, then pushes.
PUSHER = """
import sys, time
from pathlib import Path
from warden_algos.modelstore.store import ModelStore
kind, where, prefix, flag, mine = sys.argv[1:]
if kind == "local":
    from warden_algos.modelstore.local import FolderObjects
    store = ModelStore(FolderObjects(Path(where)))
else:
    from warden_algos.delivery.config import ReleaseConfig
    from warden_algos.modelstore.s3 import S3Objects
    config = ReleaseConfig(bucket="BUCKET", prefix=prefix, endpoint_url=where)
    store = ModelStore(S3Objects(config.client(), config.bucket), prefix)
blobs = [path.read_bytes() for path in sorted(Path(mine).iterdir())]
Path(f"{mine}.ready").touch()
while not Path(flag).exists():
    time.sleep(0.002)
for blob in blobs:
    store.push(blob, "host=web-1", why=f"process {Path(mine).name}")
"""


def test_concurrent_pushers_in_several_processes_lose_none(
    backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend.name == "s3":
        where, prefix = request.getfixturevalue("s3_endpoint"), backend.store.root.strip("/")
    else:
        where, prefix = backend.flags[1], ""
    flag, blobs, processes = tmp_path / "go", [], []
    for index in range(3):
        mine = tmp_path / f"pusher-{index}"
        mine.mkdir()
        for push in range(8):
            blobs.append(fitted(100 * index + push))
            (mine / f"{push}.state").write_bytes(blobs[-1])
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    PUSHER.replace("BUCKET", BUCKET),
                    backend.name,
                    where,
                    prefix,
                    str(flag),
                    str(mine),
                ],
                env=backend.env,
                stderr=subprocess.PIPE,
            )
        )
    for _ in range(6000):  # until every one is ready (at most 60 s), then release them at once
        if len(list(tmp_path.glob("*.ready"))) == len(processes):
            break
        threading.Event().wait(0.01)
    flag.touch()
    errors = [process.communicate(timeout=120)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * len(processes), errors
    assert_complete_history(backend.store, KSIGMA, pushed=blobs)
    whys = [move.why for move in backend.store.history(KSIGMA)]
    turns = sum(before != after for before, after in itertools.pairwise(whys))
    assert turns > len(processes) - 1, "the processes took turns: nothing raced"


def test_a_mover_stopped_between_pointer_and_history_loses_no_move(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backend.store
    blobs = [fitted(seed) for seed in range(3)]
    store.push(blobs[0], "host=web-1", why="first")
    real_record = ModelStore._record
    with monkeypatch.context() as patched:
        # The pointer moves, then the process "dies" before writing the history entry.
        patched.setattr(ModelStore, "_record", lambda self, pointer: None)
        store._move(KSIGMA, *_described(blobs[1]), "push", "second", "trainer-2")
    assert ModelStore._record is real_record
    assert len(store.objects.keys(store.history_prefix(KSIGMA))) == 1
    assert [m.why for m in store.history(KSIGMA)] == ["first", "second"]  # read from the pointer
    store.push(blobs[2], "host=web-1", why="third")  # records the pending move before its own
    assert_complete_history(store, KSIGMA, pushed=blobs)


def _described(blob: bytes) -> tuple[str, int, Any]:
    import hashlib

    from warden_algos.interfaces.state import decode_state

    return hashlib.sha256(blob).hexdigest(), len(blob), decode_state(blob).info


# rolling back --------------------------------------------------------------------------------


def test_rollback_walks_back_through_the_pushes_and_to_a_named_model(backend: Backend) -> None:
    import hashlib

    store = backend.store
    a, b, c = (fitted(seed) for seed in range(3))
    sha = {
        name: hashlib.sha256(blob).hexdigest() for name, blob in zip("abc", (a, b, c), strict=True)
    }
    for blob in (a, b, c):
        store.push(blob, "host=web-1", why="push")
    assert store.rollback(KSIGMA, why="c is bad").pointer.sha256 == sha["b"]
    assert store.rollback(KSIGMA, why="b too").pointer.sha256 == sha["a"]
    with pytest.raises(ModelStoreError, match="no earlier model"):
        store.rollback(KSIGMA, why="nothing before a")
    assert store.rollback(KSIGMA, why="c after all", to=sha["c"][:10]).pointer.sha256 == sha["c"]
    with pytest.raises(ModelStoreError, match="already runs"):
        store.rollback(KSIGMA, why="again", to=sha["c"])
    with pytest.raises(ModelStoreError, match="names no model"):
        store.rollback(KSIGMA, why="unknown", to="0123456789abcdef")
    moves = store.history(KSIGMA)
    assert [m.action for m in moves] == ["push"] * 3 + ["rollback"] * 3
    assert [m.why for m in moves][-3:] == ["c is bad", "b too", "c after all"]


def test_rollback_refuses_a_target_whose_blob_was_tampered_with(backend: Backend) -> None:
    store = backend.store
    a, b = fitted(1), fitted(2)
    store.push(a, "host=web-1", why="a")
    current = store.push(b, "host=web-1", why="b").pointer
    import hashlib

    flip(store, hashlib.sha256(a).hexdigest())
    with pytest.raises(ModelStoreError, match="does not match its sha256"):
        store.rollback(KSIGMA, why="back to a")
    assert store.pointer(KSIGMA) == current


def flip(store: ModelStore, sha256: str) -> None:
    """Flip one byte of a stored blob: same size, so only the sha256 can tell."""
    key = store.blob_key(sha256)
    found = store.objects.get(key)
    assert found is not None
    damaged = bytearray(found[0])
    damaged[len(damaged) // 2] ^= 0xFF
    store.objects.put(key, bytes(damaged))


# the commands ----------------------------------------------------------------------------------


def test_list_show_history_and_rollback_commands(backend: Backend) -> None:
    blobs = [fitted(seed) for seed in range(2)]
    for index, blob in enumerate(blobs):
        backend.store.push(blob, "host=web-1", why=f"fit {index}", who="trainer-1")
    series_flags = ["--algorithm", "ksigma", "--key", "host=web-1"]
    listed = orjson.loads(models(backend, "list", "--json").stdout)
    assert [(p["series_key"], p["generation"]) for p in listed] == [("host=web-1", 2)]
    shown = orjson.loads(models(backend, "show", *series_flags, "--json").stdout)
    assert shown["current"] and shown["size"] == len(blobs[1])
    assert shown["state"]["algorithm"] == "ksigma" and shown["state"]["seen_points"] == 120
    rolled = models(backend, "rollback", *series_flags, "--why", "fit 1 was bad", actor="ops")
    assert rolled.returncode == 0, rolled.stderr.decode()
    assert "rollback" in rolled.stdout.decode() and "ops: fit 1 was bad" in rolled.stdout.decode()
    history = orjson.loads(models(backend, "history", *series_flags, "--json").stdout)
    assert [(m["action"], m["who"], m["why"]) for m in history] == [
        ("push", "trainer-1", "fit 0"),
        ("push", "trainer-1", "fit 1"),
        ("rollback", "ops", "fit 1 was bad"),
    ]
    older = models(
        backend, "show", *series_flags, "--params-id", KSIGMA.params_id,
        "--sha", history[1]["to_sha256"][:12],
    )  # fmt: skip
    assert "seen       120 points" in older.stdout.decode()
    assert "current    no" in older.stdout.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "--store-dir", "/dev/null/x", "--bucket", "b"], "two stores"),
        (["history", "--algorithm", "nosuch", "--key", "k"], "UNKNOWN_ALGORITHM"),
        (["history", "--algorithm", "ksigma", "--key", "k", "--params", "[1]"], "JSON object"),
        (
            ["history", "--algorithm", "ksigma", "--key", "k", "--params", '{"k": -1}'],
            "INVALID_PARAMS",
        ),
        (["push", "--state", "/nonexistent.state", "--key", "k", "--why", "x"], "cannot read"),
        (["show", "--algorithm", "ksigma", "--key", "nothing-here"], "no model for"),
        (["rollback", "--algorithm", "ksigma", "--key", "k", "--why", "x"], "nothing to roll back"),
    ],
)
def test_refusals_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "store").mkdir()
    done = models(local_backend(tmp_path / "store"), *args)
    assert done.returncode == 1
    assert message in one_line_error(done)


def test_a_mistyped_local_store_is_not_taken_for_an_empty_one(tmp_path: Path) -> None:
    done = models(local_backend(tmp_path / "no-such-store"), "sync", "--dest", str(tmp_path))
    assert done.returncode == 1
    assert "there is no model store at" in one_line_error(done)


def test_s3_failures_and_missing_configuration_are_one_line_errors(
    s3_endpoint: str, prefix: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_")}
    unconfigured = Backend("s3", None, [], env)  # type: ignore[arg-type]
    done = models(unconfigured, "list")
    assert done.returncode == 1 and "--store-dir DIR" in one_line_error(done)
    missing = s3_backend(s3_endpoint, prefix)._replace(
        flags=["--bucket", "no-such-bucket", "--endpoint-url", s3_endpoint]
    )
    done = models(missing, "list")
    assert done.returncode == 1 and "404" in one_line_error(done)


def test_an_unreadable_pointer_is_listed_as_such_and_the_others_still_are(
    backend: Backend,
) -> None:
    store = backend.store
    store.push(fitted(1), "host=web-1", why="good")
    store.push(fitted(2), "host=web-2", why="to be broken")
    broken = SeriesId("ksigma", KSIGMA.params_id, "host=web-2")
    store.objects.put(store.pointer_key(broken), b'{"algorithm": "ksigma"}')
    done = models(backend, "list")
    assert done.returncode == 1
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 2 and "host=web-1" in lines[0] and lines[1].startswith("UNREADABLE")
    with pytest.raises(ModelStoreError, match="not a valid modelpointer record"):
        store.push(fitted(3), "host=web-2", why="over a broken pointer")


def test_the_local_store_works_without_boto3_and_s3_names_the_deploy_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from warden_algos.cli import main

    for module in ("boto3", "botocore", "botocore.exceptions"):
        monkeypatch.setitem(sys.modules, module, None)  # as in a core install: not importable
    state = tmp_path / "a.state"
    state.write_bytes(fitted(1))
    store = ["--store-dir", str(tmp_path / "store")]
    assert main(["models", "push", "--state", str(state), "--key", "k", "--why", "x", *store]) == 0
    assert main(["models", "sync", "--dest", str(tmp_path / "node"), *store]) == 0
    assert "1 installed" in capsys.readouterr().out
    assert main(["models", "list", "--bucket", "some-bucket"]) == 2
    error = capsys.readouterr().err
    assert "pip install 'warden-algos[deploy]'" in error and len(error.splitlines()) == 1


def test_folder_store_locks_per_key_stripe_not_the_whole_store(tmp_path: Path) -> None:
    """A conditional write waits only for writers of keys in its own lock stripe: a batch run's
    workers pushing different series must not queue behind each other's fsync."""
    import hashlib

    from warden_algos.modelstore.local import LOCK_STRIPES

    def stripe(key: str) -> int:
        return hashlib.sha256(key.encode()).digest()[0] % LOCK_STRIPES

    objects = FolderObjects(tmp_path)
    held = "pointers/a"
    other = next(f"pointers/b{i}" for i in range(1000) if stripe(f"pointers/b{i}") != stripe(held))
    same = next(f"pointers/c{i}" for i in range(5000) if stripe(f"pointers/c{i}") == stripe(held))
    finished: dict[str, threading.Event] = {other: threading.Event(), same: threading.Event()}

    def put(key: str) -> None:
        objects.put(key, b"x", if_absent=True)
        finished[key].set()

    with objects._locked(held):
        workers = [threading.Thread(target=put, args=(key,)) for key in finished]
        for worker in workers:
            worker.start()
        assert finished[other].wait(10), "a key of another stripe waited for the held lock"
        assert not finished[same].wait(0.3), "a key of the held stripe did not wait for it"
    assert finished[same].wait(10)
    for worker in workers:
        worker.join()
    assert objects.get(same) is not None and objects.get(other) is not None
    assert objects.keys("pointers/") == sorted([other, same])  # the lock files are not keys

"""The contract from the JVM: the harness in examples/jvm_host, built with javac and run by pytest.

Each scenario is one JVM (``HarnessTests``) talking to the real executable through its pipes; it
prints what it checked and exits non-zero on any failed check. The JDK, Debian's libthrift-java and
the Thrift compiler are installed by ``.ci/run``; a machine without them fails here, loudly, rather
than skipping, because then the contract would go unchecked.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_vectors import ALL, Vector

JVM_HOST = ROOT / "examples" / "jvm_host"
PYTHON_COMMAND = f"{sys.executable} -m warden_algos"
CONSOLE_SCRIPT = str(Path(sys.executable).parent / "warden-algos")


_built: list[str] = []


@pytest.fixture(scope="session")
def classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The harness, built once per session: a module importing this fixture (test_jvm_state)
    gets a fixture of its own from pytest, which finds the memo instead of building again."""
    if _built:
        return _built[0]
    missing = [tool for tool in ("javac", "java", "thrift") if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: run .ci/run or apt-get the packages it names"
    built = subprocess.run(
        ["bash", str(JVM_HOST / "build.sh"), str(tmp_path_factory.mktemp("jvm-host"))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    _built.append(built.stdout.strip().splitlines()[-1])
    return _built[0]


def java(
    classpath: str, main: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["java", "-cp", classpath, main, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def scenario(
    classpath: str, name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = java(
        classpath,
        "warden.algos.host.HarnessTests",
        name,
        "--command",
        PYTHON_COMMAND,
        *args,
        env=env,
    )
    assert done.returncode == 0, f"{done.stdout}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert f"{name}: " in done.stdout and " 0 failed" in done.stdout, done.stdout
    return done


def vector_groups() -> list[tuple[str, tuple[str, ...], list[Vector]]]:
    def key(v: Vector) -> tuple[str, tuple[str, ...]]:
        return v.case["environment"], tuple(v.case["args"])

    return [
        (environment, args, list(group))
        for (environment, args), group in itertools.groupby(sorted(ALL, key=key), key=key)
    ]


@pytest.mark.parametrize(
    ("environment", "args", "members"),
    vector_groups(),
    ids=[f"{env}{'-' + '-'.join(args) if args else ''}" for env, args, _ in vector_groups()],
)
def test_every_vector_round_trips_from_java(
    classpath: str,
    environment: str,
    args: tuple[str, ...],
    members: list[Vector],
    vector_environments: dict[str, dict[str, str] | None],
) -> None:
    """One-shot and pooled, every format; Java re-encodes Thrift to the same bytes; typed errors."""
    options = [item for arg in args for item in ("--option", arg)]
    done = scenario(
        classpath,
        "vectors",
        *options,
        *(str(v.folder) for v in members),
        env=vector_environments[environment],
    )
    # 3 formats x (one-shot + 2 pooled) per vector, plus the Thrift round trips: all counted
    (count,) = (line.split()[1] for line in done.stdout.splitlines() if line.startswith("vectors:"))
    assert int(count) >= 3 * 3 * len(members)
    # the host's Explanation reads the stored answers' explanations alike from every format
    explained = sum(b'"explanations":' in v.response("json") for v in members)
    assert f"vectors with explanations, read alike from every format: {explained}\n" in done.stdout


def test_four_threads_share_the_pool(classpath: str) -> None:
    """4 threads x 1,000 requests through 2 workers, each answer checked against its own input."""
    scenario(classpath, "concurrency")


def test_a_killed_or_crashed_worker_is_replaced(classpath: str, plugin_env: dict[str, str]) -> None:
    done = scenario(classpath, "worker_killed", env=plugin_env)
    assert "killed mid-request -> INTERNAL: worker" in done.stdout


def test_deadlines_on_both_sides(classpath: str, plugin_env: dict[str, str]) -> None:
    done = scenario(classpath, "deadline", env=plugin_env)
    assert "DeadlineExceeded after" in done.stdout
    assert "test_stubborn -> TIMEOUT" in done.stdout


def test_malformed_frames_get_structured_errors(classpath: str) -> None:
    scenario(classpath, "malformed_frame")


def test_a_200_mb_request_is_refused(classpath: str) -> None:
    done = scenario(classpath, "huge_request")
    assert "exceeds the limit of 134217728 bytes" in done.stdout


def test_an_rca_graph_sent_from_java_reaches_the_algorithm(
    classpath: str, plugin_env: dict[str, str]
) -> None:
    """The harness builds RCA requests with their dependency edges (Thrift GraphEdges, JSON
    rca.graph) in every format: test_graph_echo ranks by what it read, the right way round;
    deviation answers as without a graph; bad graphs are InvalidInput naming their field, after
    which the same worker answers on (``scenario`` fails on any failed check)."""
    done = scenario(classpath, "rca_graph", env=plugin_env)
    for format_name in ("json", "thrift-binary", "thrift-compact"):
        expected = f"rca graph {format_name}: 3 edges -> [metric=c 2.0, metric=b 1.0, metric=a 0.0]"
        assert expected in done.stdout, done.stdout


def test_host_cli_shows_answers_and_codes(classpath: str) -> None:
    """The person-facing CLI, driving the console script itself (as the platform would)."""
    vectors = ROOT / "serialization" / "vectors"
    main = "warden.algos.host.HostCli"
    ok = java(
        classpath,
        main,
        "--command",
        CONSOLE_SCRIPT,
        str(vectors / "correlation_ranks_the_cause" / "request.thrift-compact"),
    )
    assert ok.returncode == 0, ok.stderr
    assert "Contribution(key:dependency=db" in ok.stdout
    pooled = java(
        classpath,
        main,
        "--command",
        CONSOLE_SCRIPT,
        "--serve",
        "--repeat",
        "3",
        str(vectors / "unknown_algorithm" / "request.thrift-binary"),
    )
    assert pooled.returncode == 1, pooled.stderr
    assert "error response: UNKNOWN_ALGORITHM" in pooled.stderr
    assert pooled.stderr.count("attempt ") == 3
    missing = java(classpath, main, "--command", "/nonexistent/warden-algos", "-")
    assert missing.returncode == 2
    assert "cannot start /nonexistent/warden-algos" in missing.stderr

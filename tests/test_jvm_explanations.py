"""Explanations from the JVM (include_explanations): examples/jvm_host's ``Explanation``, read into
``Scored`` and ``MatrixScored`` by ``Trainer.withExplanations`` and
``MatrixDetector.withExplanations``, against the real executable.

One JVM (``HarnessTests explanations``) asks in JSON, thrift-binary and thrift-compact, lists and
packed, for a ksigma spike (stateless), a ksigma fit then a detect with its state (one call, and a
stream in two calls), and one_class_svm's 3-column matrix with a spike in one column (stateless
and with a state), and checks what came back; the shared explanation vectors are replayed byte for
byte by test_jvm_host like every other vector. The harness is built once per session, by
test_jvm_host's fixture.
"""

from __future__ import annotations

import orjson

from .test_jvm_host import classpath, scenario
from .test_vectors import ALL

__all__ = ["classpath"]  # the session fixture, imported to be shared (it builds once)

FORMATS = ("json", "thrift-binary", "thrift-compact")
EXPLANATION_VECTORS = {
    "ksigma_explanations",
    "ensemble_explanations",
    "seasonal_explanations",
    "one_class_svm_matrix_explanations",
}


def test_the_explanation_vectors_are_replayed_from_java() -> None:
    """test_jvm_host replays every vector (ALL) from Java; these ask for explanations and answer
    them, so that replay covers members, a seasonal context, and a matrix's columns and shares."""
    by_name = {vector.name: vector for vector in ALL}
    assert set(by_name) >= EXPLANATION_VECTORS
    kinds: set[str] = set()
    for name in EXPLANATION_VECTORS:
        vector = by_name[name]
        assert orjson.loads(vector.request("json"))["include_explanations"] is True, name
        detect = orjson.loads(vector.response("json"))["detect"]
        assert len(detect["explanations"]) == len(detect["timestamps"]) > 0, name
        for one in detect["explanations"]:
            kinds.update(key for key in ("members", "context", "columns") if key in one)
    assert kinds == {"members", "context", "columns"}


def test_explanations_answer_alike_in_every_format(classpath: str) -> None:
    """Every format and spelling gives the same explanations, one per detection, each peak within
    its detection's run, the actual the value sent there, a reason; the spike more than one band
    unit out; the matrix spike driven first by its column, with its detection's shares, in (0, 1]
    and descending. Without the option none come back and the answer is otherwise the same; a
    sha256-only stream's replay keeps only its new points' explanations; malformed explanations
    are a broken executable (``scenario`` fails on any failed check)."""
    out = scenario(classpath, "explanations").stdout
    assert "explanations: 24 answers agree: ksigma spike band_units=" in out, out
    assert "ksigma spike reason: value " in out and " band units above the expected " in out, out
    assert "matrix spike: [outlet" in out and "driven by outlet (" in out, out
    assert "thrift-compact sha256-only replay -> Stats[calls=2, byReference=0, resent=1, " in out
    assert "replayed=40" in out and "explained as one call's" in out, out
    miscounted = "explanations of another count -> INTERNAL: the executable answered 2 explanations"
    assert miscounted in out, out
    for format_name in FORMATS[1:]:
        assert f"{format_name} unpaired columns -> INTERNAL: " in out, out

"""Multivariate detection from the JVM: examples/jvm_host's ``MatrixDetector`` and ``MatrixStream``
against the real executable.

One JVM (``HarnessTests matrix``) builds a 3-column matrix (correlated columns on a daily sine,
small noise, a missing cell, a spike in one column well after the fit period) and sends it to
one_class_svm in JSON, thrift-binary and thrift-compact, lists and packed: stateless, fitted then
streamed with the state, in one call with the state's bytes, and one-shot. The harness is built
once per session, by test_jvm_host's fixture.
"""

from __future__ import annotations

from .test_jvm_host import classpath, scenario

__all__ = ["classpath"]  # the session fixture, imported to be shared (it builds once)

FORMATS = ("json", "thrift-binary", "thrift-compact")


def test_a_matrix_answers_alike_in_every_format_and_blames_the_spiked_column(
    classpath: str,
) -> None:
    """Every way gives the same detections, scores, contributions and states; every detection's
    shares sum to 1 and the spike's blame its column; a ragged or mis-sized matrix, ksigma asked
    for a matrix and a state asked about other columns are structured errors, and the serve
    worker answers the next request as before (``scenario`` fails on any failed check)."""
    out = scenario(classpath, "matrix").stdout
    assert "matrix: 6 ways agree: " in out, out
    assert "the spike's shares [inlet, outlet, return]=" in out, out
    for format_name in FORMATS:
        assert f"{format_name} ragged -> INVALID_INPUT detect.matrix" in out, out
        assert f"{format_name} packed of another width -> INVALID_INPUT detect.matrix" in out, out
        refused = f"{format_name} ksigma detect -> UNKNOWN_ALGORITHM: ksigma cannot score a matrix"
        assert refused in out, out
        assert f"{format_name} other columns -> INCOMPATIBLE_STATE: " in out, out

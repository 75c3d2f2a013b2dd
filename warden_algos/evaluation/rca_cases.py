"""RCA cases as JSON lines, so anyone can score algorithms on cases from any generator.

One case a line: ``{"request": <an RCA request as the JSON wire carries it>, "root_causes":
["<related metric key>", ...]}``. The request is decoded by the JSON codec, exactly as ``run``
would decode it (its checks and limits, its dependency graph), so a case file is also a set of
requests a host could send; its ``algorithm`` and ``params`` are ignored (``evaluate
--algorithm/--params`` choose). :func:`write_cases` writes what :func:`read_cases` reads.

A bad line is :class:`CaseFileError` naming the line and the field (``line 3: rca.graph[0].child:
...``): the request's checks, a repeated key anywhere in the line and the graph's checks
included; nothing is executed or unpickled, a line longer than ``max_line_bytes`` is refused
before it is parsed, and a file of more than ``max_cases`` cases is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import orjson

from warden_algos.interfaces.errors import InvalidInput
from warden_algos.interfaces.graph import DependencyGraph
from warden_algos.wire.duplicates import check_no_duplicate_keys
from warden_algos.wire.envelope import RCAPayload, Request
from warden_algos.wire.json_codec import JsonCodec

from .rca_synthetic import RcaCase

#: The longest line read: a request of the serve loop's default limit.
MAX_LINE_BYTES = 128 * 1024 * 1024
#: The most cases a file may hold (they are all in memory while scored).
MAX_CASES = 100_000


class CaseFileError(ValueError):
    """A case file's line that is not a case, with where and why."""


def case_line(case: RcaCase, *, algorithm: str = "deviation", k: int = 3) -> bytes:
    """One case as a JSON line (no newline)."""
    request = Request(
        interface="rca",
        algorithm=algorithm,
        payload=RCAPayload(
            metric_of_interest=case.metric_of_interest,
            related_metrics=case.related_metrics,
            k=k,
            anomalies=case.anomalies,
            graph=None if case.graph is None else list(case.graph),
        ),
        params={},
    )
    encoded = orjson.loads(JsonCodec().encode_request(request))
    return orjson.dumps({"request": encoded, "root_causes": list(case.root_causes)})


def write_cases(path: Path, cases: Iterable[RcaCase]) -> int:
    """Write ``cases`` to ``path``, one a line; how many were written."""
    count = 0
    with path.open("wb") as out:
        for case in cases:
            out.write(case_line(case) + b"\n")
            count += 1
    return count


def read_cases(
    path: Path, *, max_line_bytes: int = MAX_LINE_BYTES, max_cases: int = MAX_CASES
) -> list[RcaCase]:
    """Every case in ``path`` (blank lines skipped), or :class:`CaseFileError` at the first bad
    line (or past ``max_cases``: they are all held at once)."""
    with path.open("rb") as source:
        return list(_cases(source, max_line_bytes, max_cases))


def _cases(source: IO[bytes], max_line_bytes: int, max_cases: int) -> Iterator[RcaCase]:
    codec = JsonCodec()
    number = count = 0
    while True:
        line = source.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line_bytes:
            raise CaseFileError(f"line {number}: longer than {max_line_bytes:,} bytes")
        if not line.strip():
            continue
        count += 1
        if count > max_cases:
            raise CaseFileError(f"line {number}: more than {max_cases:,} cases")
        yield _case(line, number, codec)


def _case(line: bytes, number: int, codec: JsonCodec) -> RcaCase:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise CaseFileError(f"line {number}: not JSON: {error}") from None
    if not isinstance(document, dict) or set(document) != {"request", "root_causes"}:
        raise CaseFileError(
            f'line {number}: a case is an object with exactly "request" and "root_causes"'
        )
    causes = document["root_causes"]
    if not isinstance(causes, list) or not causes or not all(isinstance(c, str) for c in causes):
        raise CaseFileError(f"line {number}: root_causes must be a non-empty list of keys")
    try:
        check_no_duplicate_keys(line, document)  # as the wire checks a request's own bytes
        request = codec.decode_request(orjson.dumps(document["request"]))
    except InvalidInput as error:
        raise CaseFileError(f"line {number}: {error}") from None
    payload = request.payload
    if not isinstance(payload, RCAPayload):
        raise CaseFileError(f"line {number}: the request is not an RCA request")
    keys = {series.key for series in payload.related_metrics}
    unknown = [cause for cause in causes if cause not in keys]
    if unknown:
        raise CaseFileError(f"line {number}: root cause {unknown[0]!r} is no related metric's key")
    if payload.graph is not None:  # checked here, so a bad graph is reported with its line
        metrics = [payload.metric_of_interest.key, *(s.key for s in payload.related_metrics)]
        try:
            DependencyGraph.of(payload.graph, metrics)
        except InvalidInput as error:
            raise CaseFileError(f"line {number}: {error}") from None
    return RcaCase(
        metric_of_interest=payload.metric_of_interest,
        related_metrics=payload.related_metrics,
        anomalies=np.asarray(payload.anomalies, dtype=np.int64),
        root_causes=tuple(causes),
        root_dimension="",
        factor=float("nan"),
        total_effect=float("nan"),
        graph=None if payload.graph is None else tuple(payload.graph),
    )

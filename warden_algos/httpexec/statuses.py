"""Which HTTP status answers which response envelope: the one table the executor, its OpenAPI
document and the README share.

An envelope's error code says what went wrong in the contract's words; the status says it in
HTTP's, so a browser, a proxy or a retry policy can act on it without reading the body. Errors the
executor finds itself (a wrong route, a missing token, a body too large, a worker lost) answer in
the same envelope, with the nearest contract code and a precise reason in the ``Warden-Reason``
header.
"""

from __future__ import annotations

from typing import NamedTuple

from warden_algos.interfaces.errors import ErrorCode

#: The envelope's ``error.code`` -> HTTP status (an ``ok`` envelope is 200).
CODE_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.UNKNOWN_ALGORITHM: 404,
    ErrorCode.INVALID_PARAMS: 422,
    ErrorCode.INCOMPATIBLE_STATE: 409,  # the state does not fit this request: refit or resend
    ErrorCode.STATE_NOT_FOUND: 404,  # a state named by reference that is not here: send it
    ErrorCode.ALGORITHM_FAILED: 500,
    ErrorCode.INTERNAL: 500,
    ErrorCode.TIMEOUT: 504,
}

#: Header naming the executor's own reason for an error it answered itself.
REASON_HEADER = "Warden-Reason"


class Problem(NamedTuple):
    """An error the executor answers itself: its status, envelope code and reason."""

    status: int
    code: ErrorCode
    reason: str
    why: str  # for the docs


#: Every error the executor answers itself, by reason.
PROBLEMS: dict[str, Problem] = {
    problem.reason: problem
    for problem in (
        Problem(400, ErrorCode.INVALID_INPUT, "WRONG_ROUTE", "the interface is not the route's"),
        Problem(400, ErrorCode.INVALID_INPUT, "BAD_LENGTH", "a malformed Content-Length"),
        Problem(401, ErrorCode.INVALID_INPUT, "UNAUTHORIZED", "no bearer token, or a wrong one"),
        Problem(404, ErrorCode.INVALID_INPUT, "NOT_FOUND", "no such route"),
        Problem(405, ErrorCode.INVALID_INPUT, "METHOD_NOT_ALLOWED", "a route's other method"),
        Problem(408, ErrorCode.INVALID_INPUT, "BODY_TIMEOUT", "the body did not arrive in time"),
        Problem(413, ErrorCode.INVALID_INPUT, "TOO_LARGE", "the body is over --max-body-mb"),
        Problem(502, ErrorCode.INTERNAL, "WORKER_FAILED", "the worker died mid-request; replaced"),
        Problem(503, ErrorCode.INTERNAL, "NO_FREE_WORKER", "all workers busy past --queue-wait-s"),
        Problem(504, ErrorCode.TIMEOUT, "WORKER_TIMEOUT", "the worker went silent; replaced"),
    )
}  # fmt: skip


def status_of(code: str) -> int:
    """The HTTP status of an envelope's error code (500 for a code this version does not know)."""
    try:
        return CODE_STATUS[ErrorCode(code)]
    except ValueError:
        return 500

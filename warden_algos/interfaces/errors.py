"""The error vocabulary of the wire contract, as exceptions.

Each class carries the stable machine-readable code from the conventions. Errors are raised where
the problem is found (codec, validation, registry, algorithm) and turned into an error response in
exactly one place, the dispatcher. Authors may raise ``InvalidInput`` from ``detect``/``simple_rca``
when the data cannot be processed (for example, a series too short for the algorithm); any other
exception from an algorithm becomes ``ALGORITHM_FAILED``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    UNKNOWN_ALGORITHM = "UNKNOWN_ALGORITHM"
    INVALID_PARAMS = "INVALID_PARAMS"
    ALGORITHM_FAILED = "ALGORITHM_FAILED"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"
    INCOMPATIBLE_STATE = "INCOMPATIBLE_STATE"
    STATE_NOT_FOUND = "STATE_NOT_FOUND"


class WardenError(Exception):
    """Base of every error that has a wire code.

    ``field`` names the offending part of the request (``detect.values[3]``) when there is one, so a
    host can point a user at it without parsing the message.
    """

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # Filled in by the codec when the envelope was readable enough to know it, so that even an
        # invalid request gets its id echoed.
        self.request_id: str | None = None

    def __str__(self) -> str:
        if not self.field or self.message.startswith(f"{self.field}: "):
            return self.message  # params messages already name their fields
        return f"{self.field}: {self.message}"


class InvalidInput(WardenError):
    code = ErrorCode.INVALID_INPUT


class UnknownAlgorithm(WardenError):
    code = ErrorCode.UNKNOWN_ALGORITHM


class InvalidParams(WardenError):
    code = ErrorCode.INVALID_PARAMS


class AlgorithmFailed(WardenError):
    code = ErrorCode.ALGORITHM_FAILED


class RequestTimeout(WardenError):
    code = ErrorCode.TIMEOUT


class InternalError(WardenError):
    code = ErrorCode.INTERNAL


class IncompatibleState(WardenError):
    """A well-formed state that does not fit the request: fitted by another algorithm or with
    other params, or a state version this installation does not read."""

    code = ErrorCode.INCOMPATIBLE_STATE


class StateNotFound(WardenError):
    """A state named by reference (a serve cache's sha256, a stored model's series key) that this
    process does not have: resend the state itself."""

    code = ErrorCode.STATE_NOT_FOUND

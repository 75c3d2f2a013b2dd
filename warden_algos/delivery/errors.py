"""The delivery errors: each a one-line message that says what to do instead (never a traceback)."""

from __future__ import annotations


class ReleaseError(RuntimeError):
    """A refused or impossible release operation; the message says what to do instead."""


class SignatureError(ReleaseError):
    """A signature, statement or key that does not hold up; the message says which and why."""

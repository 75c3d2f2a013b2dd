"""The two JSON documents of the model store: a series' pointer and one move of its history.

A pointer carries everything its move needs (generation, action, from, to, who, when, why), so
the history entry of a generation is a copy of the pointer that made it, written right after
the move and, should the mover die in between, by the next mover before it moves the pointer on
(see ``store.py``): no move can go unrecorded.

Every field a reader uses as a name is validated by the models (algorithm: a registry name;
params id: 16 hex digits that must be the params' own; sha256: 64 hex digits; series key: 1 to
1024 characters, as the wire's ``detect.model``), so a record a bucket writer crafted is refused
before it names an object or a file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from warden_algos.delivery.errors import ReleaseError
from warden_algos.executable.manifest import Sha256
from warden_algos.interfaces.state import StateInfo, canonical_params
from warden_algos.models_folder import params_id

__all__ = [
    "ALGORITHM",
    "MAX_SERIES_KEY",
    "ModelMove",
    "ModelPointer",
    "ModelStoreError",
    "now",
]

#: A registry algorithm name (``interfaces/base.py``'s ALGORITHM_NAME).
ALGORITHM = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
PARAMS_ID = r"^[0-9a-f]{16}$"
#: As long as a detect request's ``model`` may be.
MAX_SERIES_KEY = 1024
#: The largest state a pointer may declare; the reader's own WARDEN_MAX_STATE_MB still applies.
MAX_STATE_SIZE = 2 << 30


class ModelStoreError(ReleaseError):
    """A refused or impossible model-store operation: one line that says what to do instead."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ModelPointer(BaseModel):
    """The current model of one series, and the move that made it current."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = Field(pattern=ALGORITHM)
    params_id: str = Field(pattern=PARAMS_ID)
    params: dict[str, Any]
    series_key: str = Field(min_length=1, max_length=MAX_SERIES_KEY)
    sha256: Sha256
    size: int = Field(ge=0, le=MAX_STATE_SIZE)
    #: What the blob says about itself (read when it was pushed): list shows it unfetched.
    state: StateInfo
    #: 1 for the series' first model, one more for every move: names the history entry.
    generation: int = Field(ge=1)
    action: Literal["push", "rollback"]
    from_sha256: Sha256 | None
    why: str
    updated_at: str
    updated_by: str

    @model_validator(mode="after")
    def _consistent(self) -> ModelPointer:
        if params_id(self.params) != self.params_id:
            raise ValueError("params_id is not the id of params")
        if self.params != canonical_params(self.params):
            raise ValueError("params are not in canonical form")
        if self.state.algorithm != self.algorithm or self.state.params != self.params:
            raise ValueError("the state's algorithm or params differ from the pointer's")
        return self


class ModelMove(BaseModel):
    """One entry of a series' history: generation ``generation`` moved it from one model to
    another (``from_sha256`` None for its first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = Field(pattern=ALGORITHM)
    params_id: str = Field(pattern=PARAMS_ID)
    series_key: str = Field(min_length=1, max_length=MAX_SERIES_KEY)
    generation: int = Field(ge=1)
    action: Literal["push", "rollback"]
    from_sha256: Sha256 | None
    to_sha256: Sha256
    who: str
    when: str
    why: str

    @classmethod
    def of(cls, pointer: ModelPointer) -> ModelMove:
        """The move that made ``pointer``: the same bytes whoever writes it (mover or backfill)."""
        return cls(
            algorithm=pointer.algorithm,
            params_id=pointer.params_id,
            series_key=pointer.series_key,
            generation=pointer.generation,
            action=pointer.action,
            from_sha256=pointer.from_sha256,
            to_sha256=pointer.sha256,
            who=pointer.updated_by,
            when=pointer.updated_at,
            why=pointer.why,
        )

"""A node's local folder of trained models: one current state per algorithm, params and series.

``warden-algos models sync`` fills it from the model store; ``run``/``serve --models-dir DIR``
read it when a detect request names ``model`` (a series key) instead of carrying a state. The
layout is content-free, so a reader needs no index::

    DIR/<algorithm>/<params id>/<key id[:2]>/<key id>.state

``params id`` is the first 16 hex digits of the sha256 of the canonical params (defaults filled
in, keys sorted), ``key id`` the sha256 of the series key. Each file is replaced with one rename,
so a reader sees the old model or the new one, never a half; a sync cut short leaves every model
it did not reach as it was. Files are size-checked before they are read and decoded like any
state (``interfaces/state.py``), so a planted file can at worst be refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from warden_algos.interfaces.errors import InvalidInput, StateNotFound
from warden_algos.interfaces.state import canonical_params, max_state_bytes


def params_id(params: Mapping[str, Any]) -> str:
    canonical = orjson.dumps(canonical_params(params), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def key_id(series_key: str) -> str:
    return hashlib.sha256(series_key.encode()).hexdigest()


class ModelsFolder:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, algorithm: str, params: Mapping[str, Any], series_key: str) -> Path:
        key = key_id(series_key)
        return self.root / algorithm / params_id(params) / key[:2] / f"{key}.state"

    def load(self, algorithm: str, params: Mapping[str, Any], series_key: str) -> bytes:
        """The current model's bytes, or ``STATE_NOT_FOUND`` naming what was looked for."""
        path = self.path(algorithm, params, series_key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StateNotFound(
                f"no stored {algorithm} model for series {series_key[:200]!r} with these params "
                f"in {self.root} (models sync installs them)",
                field="detect.model",
            ) from None
        except OSError as error:
            raise InvalidInput(
                f"cannot read the stored model {path.name}: {error.strerror}", field="detect.model"
            ) from None
        limit = max_state_bytes()
        with os.fdopen(fd, "rb") as file:
            blob = file.read(limit + 1)
        if len(blob) > limit:
            raise InvalidInput(
                f"the stored model is over the state limit of {limit >> 20} MiB "
                "(WARDEN_MAX_STATE_MB)",
                field="detect.model",
            )
        return blob

    def install(
        self, algorithm: str, params: Mapping[str, Any], series_key: str, blob: bytes
    ) -> Path:
        """Make ``blob`` the current model of the series, in one rename."""
        path = self.path(algorithm, params, series_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        with os.fdopen(os.open(temporary, flags, 0o644), "wb") as out:
            out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        return path

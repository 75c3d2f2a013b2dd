"""On-disk cache of detection runs, keyed by what a run depends on and nothing else.

Key = algorithm label + a hash of the algorithm's source (its module and the modules beside it,
so an ensemble's ingredients count) + the validated parameters + the corpus fingerprint + the SDK
version. Editing the algorithm, a parameter or a data file therefore misses the cache; re-running
an unchanged setting reads one small JSON file instead of detecting again. Scores are recomputed
from the cached detections, so a scorer change never serves stale numbers.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from warden_algos import __version__

from .corpus import Corpus

if TYPE_CHECKING:
    from .runner import SeriesRun

CACHE_ENV = "WARDEN_ALGOS_CACHE"


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "warden-algos" / "evaluate"


@cache
def _source_digest(directory: str, module_file: str) -> str:
    digest = hashlib.sha256(Path(module_file).read_bytes())
    for sibling in sorted(Path(directory).glob("*.py")):
        digest.update(sibling.name.encode() + b"\0" + sibling.read_bytes())
    return digest.hexdigest()


def algorithm_fingerprint(cls: type) -> str:
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    if source is None or not Path(source).is_file():
        return f"{cls.__module__}.{cls.__qualname__}:no-source"
    return _source_digest(str(Path(source).parent), source)


class RunCache:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_cache_dir()

    def key(self, label: str, fingerprint: str, params: dict[str, Any], corpus: str) -> str:
        material = orjson.dumps(
            [label, fingerprint, params, corpus, __version__], option=orjson.OPT_SORT_KEYS
        )
        return hashlib.sha256(material).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str, corpus: Corpus) -> list[SeriesRun] | None:
        from .runner import SeriesRun

        path = self._path(key)
        try:
            stored = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if [entry["key"] for entry in stored] != [s.key for s in corpus.series]:
            return None
        return [
            SeriesRun(
                key=entry["key"],
                rows=np.asarray(entry["rows"], dtype=np.int64),
                scores=np.asarray(entry["scores"], dtype=np.float64),
                seconds=float(entry["seconds"]),
            )
            for entry in stored
        ]

    def store(self, key: str, runs: list[SeriesRun]) -> None:
        payload = [
            {
                "key": run.key,
                "rows": run.rows.tolist(),
                "scores": [s if np.isfinite(s) else None for s in run.scores.tolist()],
                "seconds": run.seconds,
            }
            for run in runs
        ]
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self._path(key).with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps(payload))
        temporary.replace(self._path(key))  # atomic: parallel runs never see half a file

"""Install extras: which optional part of warden-algos needs which libraries, and the one-line
answer when one is missing.

The core install is what an author needs to write, run, check and unit-test an algorithm. Heavy or
role-specific libraries come with an extra (``pip install 'warden-algos[prophet]'``); a command or
algorithm that needs one calls :func:`require` first, so that a missing library is reported as the
extra to install, never as a traceback or a child process that "exited with 1".

``EXTRAS`` must list the same extras as ``pyproject.toml`` (a test compares them); each value is
the import names whose presence proves the extra is installed.
"""

from __future__ import annotations

import importlib.util

from warden_algos.interfaces.errors import AlgorithmFailed

EXTRAS: dict[str, tuple[str, ...]] = {
    "prophet": ("prophet",),
    "evaluate": ("matplotlib", "scipy"),
    "deploy": ("boto3", "cryptography"),
    "build": ("PyInstaller", "prophet", "sklearn"),
    "data": ("pyarrow",),
    "batch": ("dask", "distributed", "pyarrow"),
    "learned": ("sklearn",),
    "ranges": ("aeon",),
    "tracking": ("mlflow", "sqlalchemy", "alembic"),
    "http": ("starlette", "uvicorn"),
}


class MissingExtra(AlgorithmFailed):
    """A library of an extra is not installed. Raised inside a request it is a structured
    ``ALGORITHM_FAILED`` error naming the extra; the CLI prints the message and exits 2."""

    def __init__(self, extra: str, module: str, *, what: str | None = None) -> None:
        self.extra = extra
        self.module = module
        needs = f"{what} needs" if what else "this needs"
        super().__init__(
            f"{needs} the '{extra}' extra ({module} is not installed): "
            f"pip install 'warden-algos[{extra}]'"
        )


def missing(extra: str) -> str | None:
    """The first import name of ``extra`` that is not installed, or None."""
    for module in EXTRAS[extra]:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def require(extra: str, *, what: str | None = None) -> None:
    """Raise :class:`MissingExtra` unless every library of ``extra`` is installed."""
    module = missing(extra)
    if module is not None:
        raise MissingExtra(extra, module, what=what)

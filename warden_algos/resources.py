"""Where the language-neutral files live: the IDL, the shared vectors, the PyInstaller spec, the
JSON Schemas and the example requests.

The repository keeps one copy of each, in its top-level folders (``serialization/``, ``build/``,
``interfaces/``, ``examples/requests/``), so that a platform engineer finds them without reading
Python. A wheel carries a copy of those folders under ``warden_algos/_shared/`` (``pyproject.toml``,
``force-include``); an editable install or a checkout on ``sys.path`` reads the folders themselves.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGED = PACKAGE_DIR / "_shared"
CHECKOUT = PACKAGE_DIR.parent

TOP_FOLDERS = ("serialization", "build", "interfaces", "examples/requests")


class ResourceMissing(FileNotFoundError):
    """The install carries neither the packaged copy nor a checkout's folder."""


def checkout_root() -> Path | None:
    """The repository this package runs from, or None for an installed wheel."""
    is_checkout = (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "serialization").is_dir()
    return CHECKOUT if is_checkout else None


def shared(folder: str) -> Path:
    """The folder ``folder`` (one of ``TOP_FOLDERS``), packaged copy first."""
    if folder not in TOP_FOLDERS:
        raise ValueError(f"unknown shared folder {folder!r}; one of {TOP_FOLDERS}")
    for base in (PACKAGED, checkout_root()):
        if base is not None and (base / folder).is_dir():
            return base / folder
    raise ResourceMissing(
        f"{folder}/ is not installed with warden_algos (looked in {PACKAGED} and the checkout); "
        "reinstall warden-algos from a wheel or a checkout"
    )


def idl() -> Path:
    return shared("serialization") / "warden.thrift"


def vectors() -> Path:
    return shared("serialization") / "vectors"


def pyinstaller_folder() -> Path:
    """``build/``: the spec, the entry script and the hooks."""
    return shared("build")


def example_requests() -> Path:
    return shared("examples/requests")


def schemas() -> Path:
    return shared("interfaces")

"""Is the class registered, under its own name, in the environment the test runs in?

A plugin's tests import its class directly, so without this check a typo in the entry-point name
passes them while the platform cannot find the algorithm. The check looks the class up the way
``warden-algos run`` does: through the installed entry points (or the built-in table).
"""

from __future__ import annotations

from typing import Any

from warden_algos.interfaces import Algorithm
from warden_algos.interfaces.errors import WardenError
from warden_algos.plugin_sources import name_mismatch
from warden_algos.registry import ENTRY_POINT_GROUP, AlgorithmEntry, Registry, entry_target


def _points_at(entry: AlgorithmEntry, cls: type) -> bool:
    """The entry names ``cls``: by its path, or by a re-export that resolves to it."""
    if entry.target == entry_target(cls):
        return True
    if entry.target.split(".", 1)[0].split(":", 1)[0] != cls.__module__.split(".", 1)[0]:
        return False  # another package's entry: do not import it
    try:
        return entry.resolve() is cls
    except WardenError:
        return False


#: The fix for every registration problem but the "not registered at all" one.
MATCH_FIX = (
    "the entry-point name in pyproject.toml must equal the class's name; reinstall the package "
    "after changing either"
)


def registration_problem(cls: type[Algorithm[Any]]) -> tuple[str, str] | None:
    """(why ``warden-algos run`` would not reach ``cls`` by its name, the fix), or None."""
    try:
        registry = Registry.discover()
    except WardenError as error:
        return f"the installed algorithms cannot be discovered: {error.message}", MATCH_FIX
    entry = registry.entries.get(cls.name)
    if entry is not None and _points_at(entry, cls):
        try:
            loaded = registry.load(cls.name)
        except WardenError as error:
            return error.message, MATCH_FIX
        if loaded is not cls:
            return f"{cls.name!r} loads {loaded!r}, not this class", MATCH_FIX
        return None
    misnamed = [e for e in registry.entries.values() if _points_at(e, cls)]
    if misnamed:
        return "; ".join(name_mismatch(e.name, e.source, cls) for e in misnamed), MATCH_FIX
    if entry is not None:
        return (
            f"the name {cls.name!r} is taken by {entry.source} ({entry.target}), not this "
            f"class ({entry_target(cls)})",
            "rename one of them (the class's name and its entry-point name together)",
        )
    return (
        f"no installed entry point registers {entry_target(cls)}",
        f'add to your pyproject.toml: [project.entry-points."{ENTRY_POINT_GROUP}"] '
        f'{cls.name} = "{entry_target(cls)}", then pip install -e . (a class defined in a test '
        "or a notebook, which no entry point registers, is checked with registered=False)",
    )

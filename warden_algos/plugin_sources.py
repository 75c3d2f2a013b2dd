"""Where an algorithm's name is written down, so a mismatch message can say which line to change.

A plugin declares its name twice: ``name = "..."`` in the class, and the entry-point name in its
``pyproject.toml`` (which pip copies into ``entry_points.txt``). When they differ, the registry
refuses the plugin; this module finds both lines (file and line number) for that message. It runs
only on that error path, never on a normal start.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

from warden_algos.registry import ENTRY_POINT_GROUP


def _line_matching(path: Path, pattern: re.Pattern[str]) -> int | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((number for number, line in enumerate(lines, 1) if pattern.search(line)), None)


def class_name_line(cls: type) -> str | None:
    """``path:line`` of the ``name = ...`` assignment in ``cls``'s body (or None)."""
    try:
        source, first = inspect.getsourcelines(cls)
        path = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        return None
    for offset, line in enumerate(source):
        if re.match(r"\s+name\s*(:[^=]*)?=", line):
            return f"{path}:{first + offset}"
    return None


def _project_folder(dist: object) -> Path | None:
    """The source folder of a ``pip install -e`` or ``pip install ./folder`` (PEP 610)."""
    read_text = getattr(dist, "read_text", None)
    raw = read_text("direct_url.json") if read_text is not None else None
    if not raw:
        return None
    try:
        url = json.loads(raw).get("url", "")
    except ValueError:
        return None
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def entry_point_line(name: str) -> str | None:
    """``path:line`` where the entry point ``name`` is declared: the project's ``pyproject.toml``
    when the install records its source folder, else the installed ``entry_points.txt``."""
    from importlib.metadata import entry_points

    pattern = re.compile(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=")
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        dist = point.dist
        if dist is None:
            continue
        folder = _project_folder(dist)
        if folder is not None:
            line = _line_matching(folder / "pyproject.toml", pattern)
            if line is not None:
                return f"{folder / 'pyproject.toml'}:{line}"
        text = dist.read_text("entry_points.txt") or ""
        line = next((n for n, row in enumerate(text.splitlines(), 1) if pattern.search(row)), None)
        # PathDistribution keeps its dist-info folder in _path (there is no public accessor;
        # ``files`` needs a RECORD, which not every installer writes).
        folder = getattr(dist, "_path", None)
        if line is not None:
            place = Path(str(folder)) / "entry_points.txt" if folder else "entry_points.txt"
            return f"{place}:{line}"
    return None


def name_mismatch_fix(entry_name: str, source: str, cls: type) -> str:
    """ "Make them equal: ..." naming the class line and the entry-point line."""
    class_name = getattr(cls, "name", None)
    class_at = class_name_line(cls)
    entry_at = entry_point_line(entry_name)
    where_class = f" (at {class_at})" if class_at else ""
    where_entry = f" (at {entry_at})" if entry_at else f" (in {source}'s pyproject.toml)"
    return (
        f"Make them equal: change name = {class_name!r}{where_class}, or the entry-point name "
        f"{entry_name!r}{where_entry} and reinstall the package (pip install -e .)"
    )


def name_mismatch(entry_name: str, source: str, cls: type) -> str:
    """The registry's message for an entry point whose name is not its class's ``name``."""
    return (
        f"it is registered as {entry_name!r} but its class says name = "
        f"{getattr(cls, 'name', None)!r}. {name_mismatch_fix(entry_name, source, cls)}"
    )

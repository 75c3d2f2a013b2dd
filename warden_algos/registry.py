"""Where algorithms are found: the built-in table plus the ``warden_algos.algorithms`` entry points.

Discovery reads names and targets only; an algorithm's module is imported the first time that
algorithm is used (run, describe, list), never before, so running a light algorithm never imports
a heavy neighbour. Names must be unique across built-ins and plugins: a duplicate is an error at
discovery, naming both sources, because silently picking one would make behaviour depend on
install order.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

from warden_algos.interfaces import Algorithm, DetectAlgorithm, RCAAlgorithm
from warden_algos.interfaces.base import ALGORITHM_NAME, contract_problems
from warden_algos.interfaces.errors import InternalError, UnknownAlgorithm

ENTRY_POINT_GROUP = "warden_algos.algorithms"

#: name -> "module:Class" of every built-in algorithm.
BUILTIN_ALGORITHMS: dict[str, str] = {
    "ksigma": "warden_algos.algorithms.ksigma:KSigma",
    "mad": "warden_algos.algorithms.mad:Mad",
    "ewma": "warden_algos.algorithms.ewma:Ewma",
    "level_shift": "warden_algos.algorithms.level_shift:LevelShift",
    "seasonal": "warden_algos.algorithms.seasonal:Seasonal",
    "spectral_residual": "warden_algos.algorithms.spectral_residual:SpectralResidual",
    "novelty": "warden_algos.algorithms.novelty:Novelty",
    "prophet": "warden_algos.algorithms.prophet_forecast:ProphetDetector",
    "isolation_forest": "warden_algos.algorithms.isolation_forest:IsolationForest",
    "one_class_svm": "warden_algos.algorithms.one_class_svm:OneClassSVM",
    "autoencoder": "warden_algos.algorithms.autoencoder:Autoencoder",
    "drift": "warden_algos.algorithms.drift:Drift",
    "ensemble": "warden_algos.algorithms.ensemble:Ensemble",
    "correlation": "warden_algos.algorithms.correlation:Correlation",
    "adtributor": "warden_algos.algorithms.adtributor:Adtributor",
    "deviation": "warden_algos.algorithms.deviation:Deviation",
    "graph_residual": "warden_algos.algorithms.graph_residual:GraphResidual",
}


def entry_target(cls: type) -> str:
    """``module:qualname``: how an entry point names a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


class RegistryError(InternalError):
    """The installed set of algorithms is inconsistent (duplicate name, broken plugin)."""


class AlgorithmEntry(NamedTuple):
    """One registered algorithm before it is imported."""

    name: str
    target: str  # "package.module:ClassName"
    source: str  # "built-in" or "<distribution> <version>"

    def resolve(self) -> object:
        """The object the target names, imported but not yet checked against the contract."""
        module_name, _, attribute = self.target.partition(":")
        if not module_name or not attribute:
            raise RegistryError(
                f"algorithm {self.name!r} from {self.source}: entry point {self.target!r} must "
                "have the form 'package.module:ClassName'"
            )
        try:
            module = importlib.import_module(module_name)
            obj: Any = module
            for part in attribute.split("."):
                obj = getattr(obj, part)
        except Exception as error:  # a plugin may fail to import in any way at all
            raise RegistryError(
                f"algorithm {self.name!r} from {self.source}: cannot load {self.target!r}: "
                f"{type(error).__name__}: {error}. Fix the import (a missing dependency must be "
                "installed, and declared in the plugin's dependencies)"
            ) from error
        return obj

    def load(self) -> type[Algorithm[Any]]:
        obj = self.resolve()
        problems = contract_problems(obj)
        if not problems and obj.name != self.name:  # type: ignore[attr-defined]
            from warden_algos.plugin_sources import name_mismatch  # only on this error path

            assert isinstance(obj, type)
            problems.append(name_mismatch(self.name, self.source, obj))
        if problems:
            raise RegistryError(
                f"algorithm {self.name!r} from {self.source} ({self.target}) breaks the "
                f"algorithm contract: {'; '.join(problems)}"
            )
        loaded: type[Algorithm[Any]] = obj  # type: ignore[assignment]
        return loaded


class Registry:
    """Names to entries; classes are imported on first use and kept for the process's life."""

    def __init__(self, entries: dict[str, AlgorithmEntry]) -> None:
        self.entries = entries
        self._loaded: dict[str, type[Algorithm[Any]]] = {}

    @classmethod
    def discover(cls) -> Registry:
        """Built-ins plus every installed plugin. Raises RegistryError on a duplicate name.

        A frozen executable uses the registry baked in when it was built (see ``frozen``).
        """
        from warden_algos.frozen import baked

        stamp = baked()
        if stamp is not None:
            return cls.from_entries([AlgorithmEntry(*entry) for entry in stamp.entries])
        # Only unfrozen: importlib.metadata costs tens of ms a frozen start does not need.
        from importlib.metadata import entry_points

        found = [
            AlgorithmEntry(name, target, "built-in") for name, target in BUILTIN_ALGORITHMS.items()
        ]
        for point in entry_points(group=ENTRY_POINT_GROUP):
            dist = point.dist
            source = (
                f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
            )
            found.append(AlgorithmEntry(point.name, point.value, source))
        return cls.from_entries(found)

    @classmethod
    def from_entries(cls, found: list[AlgorithmEntry]) -> Registry:
        entries: dict[str, AlgorithmEntry] = {}
        for entry in found:
            if not ALGORITHM_NAME.match(entry.name):
                raise RegistryError(
                    f"algorithm name {entry.name!r} from {entry.source} is not lower_snake_case"
                )
            if entry.name in entries:
                first = entries[entry.name]
                raise RegistryError(
                    f"algorithm name {entry.name!r} is registered twice: by {first.source} "
                    f"({first.target}) and by {entry.source} ({entry.target}); uninstall one "
                    "or rename it"
                )
            entries[entry.name] = entry
        return cls(entries)

    @classmethod
    def of(cls, classes: list[type[Algorithm[Any]]]) -> Registry:
        """A registry of classes already in hand (a class under test need not be installed)."""
        registry = cls.from_entries(
            [AlgorithmEntry(c.name, entry_target(c), "given") for c in classes]
        )
        registry._loaded.update({c.name: c for c in classes})
        return registry

    def names(self) -> list[str]:
        return sorted(self.entries)

    def _unknown_message(self, name: str) -> str:
        """Names what is registered and, for a near miss (a typo, a plural), the closest names."""
        import difflib  # only on this error path

        known = self.names()
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
        for candidate in close:  # a plugin whose entry-point name has the typo, not the request
            misnamed = self._misnamed(candidate, name)
            if misnamed is not None:
                return f"no algorithm named {name!r}: {misnamed}"
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return f"no algorithm named {name!r}{hint}; registered: {', '.join(known) or 'none'}"

    def _misnamed(self, registered: str, wanted: str) -> str | None:
        """Why ``registered`` is really the algorithm ``wanted`` (its class says so), or None."""
        entry = self.entries[registered]
        try:
            obj = entry.resolve()
        except RegistryError:
            return None
        if getattr(obj, "name", None) != wanted or not isinstance(obj, type):
            return None
        from warden_algos.plugin_sources import name_mismatch_fix

        return (
            f"{entry.source} registers its class {entry.target} (name = {wanted!r}) under the "
            f"entry-point name {registered!r}. {name_mismatch_fix(registered, entry.source, obj)}"
        )

    def problems(self) -> list[str]:
        """Every entry that cannot be loaded, each with its error (what a build must refuse)."""
        found = []
        for name in self.names():
            try:
                self.load(name)
            except RegistryError as error:
                found.append(error.message)
        return found

    def load(self, name: str) -> type[Algorithm[Any]]:
        cached = self._loaded.get(name)
        if cached is not None:
            return cached
        entry = self.entries.get(name)
        if entry is None:
            raise UnknownAlgorithm(self._unknown_message(name), field="algorithm")
        algorithm_class = entry.load()
        self._loaded[name] = algorithm_class
        return algorithm_class

    def load_for(self, interface: str, name: str) -> type[Algorithm[Any]]:
        """The class for ``name``, which must implement ``interface``."""
        algorithm_class = self.load(name)
        if algorithm_class.interface != interface:
            raise UnknownAlgorithm(
                f"{name!r} implements the {algorithm_class.interface} interface, not {interface}",
                field="algorithm",
            )
        return algorithm_class


def is_detect(algorithm_class: type[Algorithm[Any]]) -> bool:
    return issubclass(algorithm_class, DetectAlgorithm)


def is_rca(algorithm_class: type[Algorithm[Any]]) -> bool:
    return issubclass(algorithm_class, RCAAlgorithm)

"""The wire contract as files: the JSON Schemas, index and OpenAPI document ``interfaces/`` holds.

Platform engineers read the contract from ``interfaces/`` without reading Python, so the files are
generated from the code that enforces it (the pydantic wire models and each built-in algorithm's
``Params``) and a test fails when the committed copy drifts. ``warden-algos schema --write DIR``
(re)writes them. ``openapi.json`` (the HTTP executor's routes, warden_algos/httpexec/openapi.py)
is built from the same envelope schemas.

Only built-in algorithms are described: their entries come from ``BUILTIN_ALGORITHMS``, never from
discovery, so a plugin installed on the developer's machine cannot leak into the committed files
(and a broken plugin cannot stop the generation).

Output is deterministic: pydantic's key order, orjson with two-space indents and a final newline,
algorithms in name order, and nothing that changes between runs (no version, no date). Imported
only by the ``schema`` command and the tests, never by ``run`` or ``serve``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:
    from warden_algos.interfaces import Algorithm

#: The dialect pydantic emits; stated in every schema so a validator need not guess.
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: Prefix of every schema's ``$id``: location-independent, so a copy anywhere keeps its identity.
ID_PREFIX = "urn:warden-algos:"
REQUEST_FILE = "request.schema.json"
RESPONSE_FILE = "response.schema.json"
INDEX_FILE = "index.json"
PARAMS_FOLDER = "params"
PARAMS_SUFFIX = ".schema.json"
#: Hand-written, next to the generated files; listed by the index, never written here.
CONTRACT_DOCUMENT = "CONTRACT.md"
REGENERATE_COMMAND = "warden-algos schema --write interfaces"


class Written(NamedTuple):
    """What ``write_contract_files`` did, as paths relative to the folder."""

    changed: list[str]  # new or different bytes
    unchanged: list[str]
    removed: list[str]  # stale params schemas of algorithms that no longer exist


def dump(obj: Any) -> bytes:
    """The one byte form of every file: stable across runs and machines."""
    import orjson

    data: bytes = orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n"
    return data


def envelope_schema(which: Literal["request", "response"]) -> dict[str, Any]:
    """The JSON Schema of the request or response envelope (JSON form)."""
    from warden_algos.wire.json_codec import WireRequest, WireResponse

    model = WireRequest if which == "request" else WireResponse
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{ID_PREFIX}{which}",
        **model.model_json_schema(),
    }


def params_path(name: str) -> str:
    return f"{PARAMS_FOLDER}/{name}{PARAMS_SUFFIX}"


def builtin_algorithms() -> list[type[Algorithm[Any]]]:
    """Every built-in algorithm class, in name order, loaded through the registry's checks."""
    from warden_algos.registry import BUILTIN_ALGORITHMS, AlgorithmEntry, Registry

    registry = Registry.from_entries(
        [AlgorithmEntry(name, target, "built-in") for name, target in BUILTIN_ALGORITHMS.items()]
    )
    return [registry.load(name) for name in registry.names()]


def params_schema(algorithm_class: type[Algorithm[Any]]) -> dict[str, Any]:
    """The algorithm's ``params`` object schema, with an ``$id`` and a title naming it.

    The title replaces pydantic's (the Python class name, meaningless on the wire) in place, so
    pydantic's key order is kept.
    """
    name, interface = algorithm_class.name, algorithm_class.interface
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{ID_PREFIX}params:{interface}:{name}",
        **algorithm_class.params_schema(),
    }
    schema["title"] = f"params of {interface} algorithm {name}"
    return schema


def contract_files() -> dict[str, bytes]:
    """``{path relative to interfaces/: bytes}`` of every generated file."""
    algorithms = builtin_algorithms()
    files = {
        REQUEST_FILE: dump(envelope_schema("request")),
        RESPONSE_FILE: dump(envelope_schema("response")),
    }
    from warden_algos.interfaces.trainable import is_trainable

    entries = []
    for algorithm_class in algorithms:
        path = params_path(algorithm_class.name)
        files[path] = dump(params_schema(algorithm_class))
        trainable = is_trainable(algorithm_class)
        entries.append(
            {
                "name": algorithm_class.name,
                "interface": algorithm_class.interface,
                "summary": algorithm_class.summary,
                "params_schema": path,
                "trainable": trainable,
                "state_version": getattr(algorithm_class, "state_version", None)
                if trainable
                else None,
            }
        )
    index = {
        "description": "The warden-algos wire contract (JSON form): envelope schemas and the "
        "params schema of every built-in algorithm. Generated; do not edit.",
        "regenerate": REGENERATE_COMMAND,
        "contract": CONTRACT_DOCUMENT,
        "json_schema_dialect": JSON_SCHEMA_DIALECT,
        "request_schema": REQUEST_FILE,
        "response_schema": RESPONSE_FILE,
        "algorithms": entries,
    }
    from warden_algos.httpexec.openapi import OPENAPI_FILE, openapi_document

    index["openapi"] = OPENAPI_FILE  # the HTTP executor's routes, with these envelopes as bodies
    files[OPENAPI_FILE] = dump(openapi_document())
    files[INDEX_FILE] = dump(index)
    return files


def write_contract_files(folder: Path) -> Written:
    """Write every generated file into ``folder``; delete params schemas no algorithm has any more.

    Files whose bytes are already right are left untouched. Only ``params/*.schema.json`` is ever
    deleted: anything else in the folder (the hand-written contract document) is not ours.
    """
    files = contract_files()
    changed, unchanged = [], []
    for relative, data in files.items():
        target = folder / relative
        if target.is_file() and target.read_bytes() == data:
            unchanged.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        changed.append(relative)
    removed = []
    for stale in sorted((folder / PARAMS_FOLDER).glob(f"*{PARAMS_SUFFIX}")):
        relative = f"{PARAMS_FOLDER}/{stale.name}"
        if relative not in files:
            stale.unlink()
            removed.append(relative)
    return Written(changed=changed, unchanged=unchanged, removed=removed)

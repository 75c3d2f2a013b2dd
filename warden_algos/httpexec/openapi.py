"""The HTTP executor's OpenAPI document, built from the contract's own envelope schemas.

The request and response bodies are the JSON Schemas ``interfaces/`` holds (pydantic's, via
``contract_files.envelope_schema``), never a second hand-written description that could drift;
their ``$defs`` move to ``components/schemas`` (a ``$ref`` in OpenAPI resolves against the whole
document). Deterministic, like every contract file: committed as ``interfaces/openapi.json`` and
compared with what this code generates by the contract-files test. No Starlette import: the
``schema --write`` command builds it too.
"""

from __future__ import annotations

from typing import Any

from warden_algos.contract_files import envelope_schema
from warden_algos.httpexec.statuses import CODE_STATUS, PROBLEMS

OPENAPI_FILE = "openapi.json"
OPENAPI_VERSION = "3.1.0"
INTERFACES = ("detect", "rca", "fit")
REQUEST, RESPONSE = "WardenRequest", "WardenResponse"


def _relocate(node: Any, renames: dict[str, str]) -> Any:
    """``node`` with every ``#/$defs/X`` reference pointed at its component."""
    if isinstance(node, dict):
        return {
            key: (
                f"#/components/schemas/{renames[value.removeprefix('#/$defs/')]}"
                if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/")
                else _relocate(value, renames)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_relocate(value, renames) for value in node]
    return node


def component_schemas() -> dict[str, Any]:
    """Both envelopes and their definitions as components; a definition the two share (with the
    same content) is kept once, one that differs is named after its envelope."""
    components: dict[str, Any] = {}
    for which, title in (("request", REQUEST), ("response", RESPONSE)):
        schema = envelope_schema(which)  # type: ignore[arg-type]
        definitions: dict[str, Any] = schema.pop("$defs", {})
        same = {name: name for name in definitions}
        renames = {
            name: name
            if name not in components or components[name] == _relocate(body, same)
            else f"{title}{name}"
            for name, body in definitions.items()
        }
        for name, body in definitions.items():
            components[renames[name]] = _relocate(body, renames)
        for key in ("$schema", "$id"):  # the document's dialect says it; ids are the files'
            schema.pop(key, None)
        components[title] = _relocate(schema, renames)
    return dict(sorted(components.items()))


def _envelope_answer(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{RESPONSE}"}}},
    }


def _error_answers(*statuses: int) -> dict[str, Any]:
    """Each status with every reason that answers it (envelope codes and the executor's own)."""
    reasons: dict[int, list[str]] = {}
    for code, status in CODE_STATUS.items():
        reasons.setdefault(status, []).append(f"error.code {code.value}")
    for problem in PROBLEMS.values():
        reasons.setdefault(problem.status, []).append(
            f"{problem.reason}: {problem.why} (error.code {problem.code.value})"
        )
    return {
        str(status): _envelope_answer("; ".join(reasons[status]))
        for status in sorted(statuses)
        if status in reasons
    }


def _interface_route(interface: str) -> dict[str, Any]:
    statuses = {*CODE_STATUS.values(), *(problem.status for problem in PROBLEMS.values())}
    statuses -= {405}
    return {
        "post": {
            "operationId": interface,
            "summary": f"answer one {interface} request envelope (its interface must be "
            f"{interface!r})",
            "security": [{"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{REQUEST}"}}
                },
            },
            "responses": {
                "200": _envelope_answer("status ok, with the interface's result"),
                **_error_answers(*statuses),
            },
        }
    }


def _json_route(operation: str, summary: str, secured: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "operationId": operation,
        "summary": summary,
        "responses": {
            "200": {
                "description": summary,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }
    if secured:
        answer["security"] = [{"bearer": []}]
        answer["responses"].update(_error_answers(401))
    else:
        answer["security"] = []
    return {"get": answer}


def openapi_document() -> dict[str, Any]:
    """The whole document, deterministic (no version, no date, no host)."""
    paths: dict[str, Any] = {f"/v1/{name}": _interface_route(name) for name in INTERFACES}
    paths["/v1/algorithms"] = _json_route(
        "algorithms", "the registered algorithms: name, interface, summary, params schema"
    )
    paths["/healthz"] = _json_route("healthz", "the process is up", secured=False)
    readyz = _json_route("readyz", "the workers are started and answering", secured=False)
    readyz["get"]["responses"]["503"] = {"description": "not ready yet (or any more)"}
    paths["/readyz"] = readyz
    paths["/openapi.json"] = _json_route("openapi", "this document")
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "warden-algos HTTP executor",
            "version": "v1",
            "description": "The warden-algos wire contract (JSON form) over HTTP: the bodies are "
            "the request and response envelopes of interfaces/request.schema.json and "
            "response.schema.json. Generated by warden-algos schema --write interfaces; do not "
            "edit.",
        },
        "jsonSchemaDialect": envelope_schema("request")["$schema"],
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "required on every route but /healthz and /readyz when the "
                    "executor was started with --token-file or WARDEN_HTTP_TOKEN",
                }
            },
        },
    }

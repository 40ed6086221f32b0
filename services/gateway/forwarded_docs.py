"""What the services behind the gateway take and answer, in the gateway's OpenAPI document.

The gateway forwards a request's body and a service's answer as they are, so for each
forwarded operation its document says what that service's document says: the request body
the service reads (where it declares one), the success statuses, their content types and the
schemas they name. They are kept in forwarded.openapi.json beside this file, taken from the
services' own documents by `python -m tests.api.test_public_contract` (a test checks the file
is current): the gateway imports no service's code, and its document cannot drift from theirs.
"""

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

FILE = Path(__file__).with_name("forwarded.openapi.json")
REF = "#/components/schemas/"


def extract(documents: dict[str, dict[str, Any]], operations: set[tuple[str, str]]) -> dict[str, Any]:
    """From each service's document, the request bodies and success responses of the
    operations the gateway forwards ((METHOD, path) pairs) and every schema they name, directly
    or through another."""
    found: dict[str, Any] = {"operations": {}, "schemas": {}}
    for service, document in sorted(documents.items()):
        schemas = document.get("components", {}).get("schemas", {})
        named: dict[str, Any] = {}
        for path, methods in sorted(document.get("paths", {}).items()):
            for method, operation in sorted(methods.items()):
                if (method.upper(), path) not in operations:
                    continue
                success = {s: r for s, r in operation.get("responses", {}).items() if s.startswith("2")}
                entry = {"service": service, "responses": success}
                # An error the service answers with a model of its own (inference's 503
                # {"ready": false}, say), beside the gateway's own answer for that status. Not
                # 422: the gateway's schema for it covers the services' validation errors.
                errors = {
                    s: r
                    for s, r in operation.get("responses", {}).items()
                    if not s.startswith("2") and s != "422" and "$ref" in json.dumps(r.get("content", {}))
                }
                if errors:
                    entry["errors"] = errors
                if "requestBody" in operation:
                    entry["requestBody"] = operation["requestBody"]
                found["operations"][f"{method.upper()} {path}"] = entry
                _collect(entry, schemas, named)
        if named:
            found["schemas"][service] = dict(sorted(named.items()))
    return found


def _collect(node: Any, schemas: dict[str, Any], named: dict[str, Any]) -> None:
    for ref in _refs(node):
        name = ref.removeprefix(REF)
        if name not in named:
            named[name] = schemas[name]
            _collect(schemas[name], schemas, named)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) and node["$ref"].startswith(REF) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def merge(document: dict[str, Any], forwarded: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Puts the services' request bodies and success responses on the gateway's forwarded
    operations, in place; returns how each service's schemas are named in the document. A
    service's schema keeps its name unless the document already has another schema by that
    name; it is then named "<service>.<name>"."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    renamed: dict[str, dict[str, str]] = {}
    for service, schemas in forwarded["schemas"].items():
        names = renamed[service] = {}
        for name, schema in schemas.items():
            names[name] = name if components.get(name, schema) == schema else f"{service}.{name}"
        for name, schema in schemas.items():
            components[names[name]] = _renamed(schema, names)
    for operation, found, names in _operations(document, forwarded, renamed):
        responses = operation.setdefault("responses", {})
        for status in [s for s in responses if s.startswith("2")]:
            del responses[status]
        responses.update(_renamed(found["responses"], names))
        if "requestBody" in found:
            operation["requestBody"] = _renamed(found["requestBody"], names)
    return renamed


def merge_errors(document: dict[str, Any], forwarded: dict[str, Any], renamed: dict[str, dict[str, str]]) -> None:
    """Beside the gateway's own answer for an error status, the one its service gives with a
    model of its own, in place (after the gateway's error responses are in the document;
    `renamed` is what merge returned)."""
    for operation, found, names in _operations(document, forwarded, renamed):
        responses = operation.setdefault("responses", {})
        for status, theirs in _renamed(found.get("errors", {}), names).items():
            responses[status] = _either(responses.get(status), theirs)


def _operations(
    document: dict[str, Any], forwarded: dict[str, Any], renamed: dict[str, dict[str, str]]
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, str]]]:
    """Each forwarded operation the document has, with what the file holds for it and its
    service's schema names (a route the gateway no longer has is skipped: the snapshot test
    says so)."""
    for key, found in forwarded["operations"].items():
        method, path = key.split(" ", 1)
        operation = document.get("paths", {}).get(path, {}).get(method.lower())
        if operation is not None:
            yield operation, found, renamed.get(found["service"], {})


def _either(mine: dict[str, Any] | None, theirs: dict[str, Any]) -> dict[str, Any]:
    """A response that may be the gateway's own or the service's, by its JSON schema."""
    if mine is None:
        return theirs
    schemas = [r.get("content", {}).get("application/json", {}).get("schema") for r in (mine, theirs)]
    if None in schemas or schemas[0] == schemas[1]:
        return mine
    description = f"{mine.get('description', '')}; or, from the service: {theirs.get('description', '')}"
    content = {**mine.get("content", {}), "application/json": {"schema": {"anyOf": schemas}}}
    return {**mine, "description": description, "content": content}


def _renamed(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF) and ref.removeprefix(REF) in names:
            node = {**node, "$ref": REF + names[ref.removeprefix(REF)]}
        return {k: _renamed(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node


@cache
def _stored() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(FILE.read_text())
    return found


def stored() -> dict[str, Any]:
    """The file's content (a copy: merging must not change what the next document starts from)."""
    return copy.deepcopy(_stored())

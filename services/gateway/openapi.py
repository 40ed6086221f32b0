"""The gateway's OpenAPI document, made to say what the gateway answers.

FastAPI documents each route's success and its own 422 only. The gateway answers much more on
every operation, from several layers: its server (408, 431, 503 past the connection cap, as
plain text), its key check (401, 403, 429), its route table (400 for a path or query the route
does not allow, 413 for a body past the limit) and the service it forwards to (whatever that
answers: 404, 409, 422, 503 ...). Every such status is added here to each operation it can come
from, with its body's schema: {"detail": ...} on /api, the Open Inference Protocol's
{"error": ...} on /v2 (tests/integration/test_openapi.py holds the document to the answers).
What a forwarded operation answers on success is the service's own document's (forwarded_docs).
"""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from services.gateway import forwarded_docs

DETAIL = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "description": "what went wrong, in words; FastAPI's validation errors, as a list",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        }
    },
}
OIP_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
TEXT = {"text/plain": {"schema": {"type": "string"}}}

WHY = {
    400: "the path or the query names something the operation does not take",
    401: "no API key, or one that is unknown or revoked",
    403: "the key's roles do not allow this operation",
    404: "no such resource",
    408: "the request did not arrive in time (sent by the server, as text)",
    409: "the request conflicts with the resource's current state",
    413: "the body is larger than the gateway takes",
    415: "the body's content type is not one the operation takes",
    422: "the body or a parameter is not valid",
    429: "the key is over its rate: wait Retry-After seconds",
    431: "a header, or the headers together, are too large (sent by the server, as text)",
    503: "the service behind the operation is not answering (or too many connections, as text)",
}
FROM_SERVER = {408, 431}  # answered before the app, as plain text
WITH_BODY = {"post", "put", "patch"}


def _statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    found = {404, 408, 422, 431, 503}
    if operation.get("security"):
        found |= {401, 403, 429}
    if "{" in path or operation.get("parameters"):
        found.add(400)
    if method in WITH_BODY:
        found |= {400, 409, 413, 415}  # 400: a body that does not parse
    if method == "delete":
        found.add(409)
    return found


def _response(status: int, path: str, existing: dict[str, Any] | None) -> dict[str, Any]:
    error = OIP_ERROR if path.startswith("/v2") else DETAIL
    content: dict[str, Any] = dict(TEXT) if status in FROM_SERVER else {"application/json": {"schema": error}}
    if status == 503:
        content |= TEXT
    description = WHY[status] if existing is None else existing.get("description", WHY[status])
    response: dict[str, Any] = {"description": description, "content": content}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
    return response


def truthful(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's openapi() with every error status each operation can answer, and the success
    responses of the services it forwards to."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = make()
        forwarded = forwarded_docs.stored()
        renamed = forwarded_docs.merge(document, forwarded)
        for path, operations in document["paths"].items():
            if not (path.startswith("/api") or path.startswith("/v2")):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status in sorted(_statuses(method, path, operation)):
                    responses[str(status)] = _response(status, path, responses.get(str(status)))
        forwarded_docs.merge_errors(document, forwarded, renamed)
        app.openapi_schema = document
        return document

    return openapi

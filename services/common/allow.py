"""A 405 names every method the path takes in its Allow header (RFC 9110), not only those of
the first route that matched: FastAPI keeps one route per operation, and Starlette's 405 lists
the methods of the first route whose path matched (OPTIONS /api/datasets said `Allow: POST`
though GET is served there too). The methods come from the app's OpenAPI document, which names
every public operation (FastAPI 0.165 nests included routers, whose routes it does not expose)."""

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CompleteAllow:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = _methods(scope)
                if allowed:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                    message = {**message, "headers": [*headers, (b"allow", ", ".join(sorted(allowed)).encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)


def _methods(scope: Scope) -> set[str]:
    app: Any = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return set()
    if not hasattr(app.state, "allowed_methods"):
        app.state.allowed_methods = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), {m.upper() for m in ops})
            for path, ops in app.openapi()["paths"].items()
        ]
    path = scope["path"]
    return {m for pattern, methods in app.state.allowed_methods if pattern.match(path) for m in methods}

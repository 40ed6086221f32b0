"""What the gateway's routes give away to a caller without a key (issue 17, item 5):

- /readyz: ready or not; its details (the sidecar's version, its components, why it is not
  ready) only with a valid API key or the app token (services.common.app.readyz asks
  `readiness_details`);
- /dapr/... and /internal/...: what only the gateway's sidecar calls (the subscriptions, the
  event deliveries) answers only with the app token, though clients call the public routes
  without it;
- a path with a trailing slash: a 404 that says so, not Starlette's redirect, whose Location
  is built from the Host header the client sent (`Host: evil.example` -> a link to evil.example);
- /docs: the gateway's own Swagger UI page (console/api.py), not FastAPI's, which loads Swagger UI
  and ReDoc from a CDN and runs an inline script; ReDoc, which needs inline styles, not at all.
"""

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from services.common.middleware import AppToken, RequestIds
from services.gateway.keys.service import KeyRing, presented_key
from services.gateway.settings import Settings

SIDECAR_ONLY = ("/dapr/", "/internal/")
CDN_DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc"}


def close(app: FastAPI, settings: Settings, keys: KeyRing) -> None:
    """Applies all of the above to the gateway's app, once its routes are in."""
    app.state.readiness_details = lambda request: keys.valid(presented_key(request.headers))
    _sidecar_routes_need_the_app_token(app, settings)
    app.router.redirect_slashes = False
    app.add_exception_handler(HTTPException, not_found)  # type: ignore[arg-type]
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and not isinstance(route, APIRoute) and route.path in CDN_DOCS)
    ]


async def not_found(request: Request, exc: HTTPException) -> Response:
    """A path with a trailing slash: a 404 saying what to send instead. Other errors as FastAPI
    answers them."""
    path = request.url.path
    if exc.status_code == 404 and path != "/" and path.endswith("/") and exc.detail == "Not Found":
        detail = "no such path: the gateway's paths do not end in '/'; send it without the trailing slash"
        return JSONResponse({"detail": detail}, 404)
    return await http_exception_handler(request, exc)


def _sidecar_routes_need_the_app_token(app: FastAPI, settings: Settings) -> None:
    """Checked inside RequestIds (which build_app adds outermost), so a refusal has a request id
    too. The deliveries check the token themselves as well (dapr_adapters.subscriptions._from_sidecar)."""
    if settings.app_api_token is None:  # tests without a sidecar
        return
    classes: list[object] = [m.cls for m in app.user_middleware]
    guard = Middleware(AppToken, token=settings.app_api_token.get_secret_value(), only=SIDECAR_ONLY)
    app.user_middleware.insert(classes.index(RequestIds) + 1, guard)

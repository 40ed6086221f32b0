"""The web console: one static page at `/`, its scripts and styles under `/console/...`; and
the API docs at `/docs`: Swagger UI from the same folder, never from a CDN.

The files themselves need no key (they hold no data): the page asks for an API key, keeps it
in its script's memory only (never in the browser's storage, which every page of this origin,
/docs included, could read) and sends it as `Authorization: Bearer` on every call to the
public API, which checks it as it checks any client's. Only the files in console/ are served,
by name from a list made at start-up (nothing a client sends becomes a path); the routes stay
out of the OpenAPI document.

Vendored, with their licences: Chart.js 4.6.1 (console/vendor/chart.umd.js) and Swagger UI
5.35.0 (swagger-ui-bundle.js and swagger-ui.css, from `npm pack swagger-ui-dist@5.35.0`; the
docs page pins both by their SHA-384, see docs.html). ReDoc is not served: it needs inline
styles, which the policy below refuses.
"""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

FILES = Path(__file__).with_name("console")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# The console holds an API key: it and the docs page run only scripts from these files (no
# inline script, no eval, no other origin) and cannot be framed.
HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def _served() -> dict[str, Path]:
    if not FILES.is_dir():
        return {}
    return {
        path.relative_to(FILES).as_posix(): path
        for path in sorted(FILES.rglob("*"))
        if path.is_file() and path.suffix in TYPES
    }


SERVED = _served()


def _file(name: str) -> FileResponse:
    path = SERVED.get(name)
    if path is None:
        raise HTTPException(404, f"no console file {name!r}")
    return FileResponse(path, media_type=TYPES[path.suffix], headers=HEADERS)


@router.get("/")
async def page() -> FileResponse:
    """The console's page (it asks for an API key before it calls anything)."""
    return _file("index.html")


@router.get("/docs")
async def docs() -> FileResponse:
    """The API docs: Swagger UI over /openapi.json, under the console's policy."""
    return _file("docs.html")


@router.get("/console/{name:path}")
async def asset(name: str) -> FileResponse:
    return _file(name)

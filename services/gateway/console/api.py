"""The web console: one static page at `/`, its modules and styles under `/console/...`; and
the API docs at `/docs`: Swagger UI from the same folder, never from a CDN.

The files themselves need no key (they hold no data): the page asks for an API key, keeps it
in its script's memory only (never in the browser's storage, which every page of this origin,
/docs included, could read) and sends it as `Authorization: Bearer` on every call to the
public API, which checks it as it checks any client's. Only the files service.py lists are
served; the routes stay out of the OpenAPI document.
"""

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from services.gateway.deps import ConsoleDep

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


def _file(files: ConsoleDep, name: str) -> FileResponse:
    found = files.find(name)
    if found is None:
        raise HTTPException(404, f"no console file {name!r}")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers=HEADERS)


@router.get("/")
async def page(files: ConsoleDep) -> FileResponse:
    """The console's page (it asks for an API key before it calls anything)."""
    return _file(files, "index.html")


@router.get("/docs")
async def docs(files: ConsoleDep) -> FileResponse:
    """The API docs: Swagger UI over /openapi.json, under the console's policy."""
    return _file(files, "docs.html")


@router.get("/console/{name:path}")
async def asset(name: str, files: ConsoleDep) -> FileResponse:
    return _file(files, name)

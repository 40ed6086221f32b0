"""The dataset API, as the public sees it: each route a named operation of ingestion.

Parameters are validated here, by the same rules ingestion applies, before anything is
forwarded; what ingestion answers comes back as it is. tests/api/test_gateway_api.py checks
that these routes and ingestion's own are the same set.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from services.common.contracts import DATASET_NAME, EXPORT_FORMAT, UPLOAD_ID, VERSION_REF, Task
from services.gateway.deps import INGEST, READ, IngestionDep

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

Name = Annotated[str, Path(pattern=DATASET_NAME, description="lower-case letters, digits, '-' and '_'")]
UploadId = Annotated[str, Path(pattern=UPLOAD_ID, description="as the upload's start answered")]
Version = Annotated[str, Path(pattern=VERSION_REF, description="a version number or 'latest'")]
PartNumber = Annotated[int, Path(ge=1, le=1_000_000)]
Target = Annotated[
    str | None, Query(min_length=1, max_length=200, description="creates the dataset from the data if it is new")
]
# The task as a pattern of the shared words, as ingestion's own parameter (an enum) allows them.
TaskQuery = Annotated[str | None, Query(pattern=f"^({'|'.join(Task)})$")]

TEXT_BODY = {"type": "string"}
DATA_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": TEXT_BODY},
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": TEXT_BODY},
        },
    }
}


@router.post("", status_code=201, dependencies=[INGEST])
async def create_dataset(request: Request, ingestion: IngestionDep) -> Response:
    """Declares a dataset: name, task, target and (optionally) its columns."""
    return await ingestion.forward(request, "api", "datasets")


@router.get("", dependencies=[READ])
async def list_datasets(
    request: Request,
    ingestion: IngestionDep,
    offset: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return await ingestion.forward(request, "api", "datasets", query={"offset": offset, "limit": limit})


@router.get("/{name}", dependencies=[READ])
async def get_dataset(name: Name, request: Request, ingestion: IngestionDep) -> Response:
    return await ingestion.forward(request, "api", "datasets", name)


@router.post("/{name}/versions", status_code=201, openapi_extra=DATA_BODY, dependencies=[INGEST])
async def upload(
    name: Name, request: Request, ingestion: IngestionDep, target: Target = None, task: TaskQuery = None
) -> Response:
    """One-shot upload: CSV, a JSON list of records, or NDJSON."""
    return await ingestion.forward(request, "api", "datasets", name, "versions", query={"target": target, "task": task})


@router.post("/{name}/uploads", status_code=201, dependencies=[INGEST])
async def start_upload(
    name: Name, request: Request, ingestion: IngestionDep, target: Target = None, task: TaskQuery = None
) -> Response:
    return await ingestion.forward(request, "api", "datasets", name, "uploads", query={"target": target, "task": task})


@router.get("/{name}/uploads/{upload_id}", dependencies=[READ])
async def get_upload(name: Name, upload_id: UploadId, request: Request, ingestion: IngestionDep) -> Response:
    return await ingestion.forward(request, "api", "datasets", name, "uploads", upload_id)


@router.put("/{name}/uploads/{upload_id}/parts/{number}", openapi_extra=DATA_BODY, dependencies=[INGEST])
async def put_part(
    name: Name, upload_id: UploadId, number: PartNumber, request: Request, ingestion: IngestionDep
) -> Response:
    """One part: a self-contained body (CSV parts each start with the header line)."""
    return await ingestion.forward(request, "api", "datasets", name, "uploads", upload_id, "parts", str(number))


@router.post("/{name}/uploads/{upload_id}/commit", status_code=201, dependencies=[INGEST])
async def commit(name: Name, upload_id: UploadId, request: Request, ingestion: IngestionDep) -> Response:
    return await ingestion.forward(request, "api", "datasets", name, "uploads", upload_id, "commit")


@router.delete("/{name}/uploads/{upload_id}", status_code=204, dependencies=[INGEST])
async def abort(name: Name, upload_id: UploadId, request: Request, ingestion: IngestionDep) -> Response:
    return await ingestion.forward(request, "api", "datasets", name, "uploads", upload_id)


@router.get("/{name}/versions/{version}", dependencies=[READ])
async def get_version(name: Name, version: Version, request: Request, ingestion: IngestionDep) -> Response:
    """The version's manifest: schema, row count, content sha256 and profile."""
    return await ingestion.forward(request, "api", "datasets", name, "versions", version)


@router.get("/{name}/versions/{version}/rows", dependencies=[READ])
async def get_rows(
    name: Name,
    version: Version,
    request: Request,
    ingestion: IngestionDep,
    offset: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    return await ingestion.forward(
        request, "api", "datasets", name, "versions", version, "rows", query={"offset": offset, "limit": limit}
    )


@router.get("/{name}/versions/{version}/data", dependencies=[READ])
async def download(
    name: Name,
    version: Version,
    request: Request,
    ingestion: IngestionDep,
    format: Annotated[str | None, Query(pattern=EXPORT_FORMAT)] = None,
) -> Response:
    """The whole version as CSV (default) or Parquet."""
    return await ingestion.forward(
        request, "api", "datasets", name, "versions", version, "data", query={"format": format}
    )

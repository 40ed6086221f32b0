"""Ingestion's HTTP routes: translate HTTP to service calls and back, nothing more.

`router` is what the gateway forwards; `internal` is called by other services through Dapr
service invocation only (the monitor, to start a retrain's upload; services/common/contracts
is its contract)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.common.contracts import DATASET_NAME, EXPORT_FORMAT, UPLOAD_ID, VERSION_REF, Task, UploadStart
from services.ingestion.deps import ServiceDep, SettingsDep
from services.ingestion.domain import export
from services.ingestion.domain.errors import TooLarge
from services.ingestion.domain.model import DatasetInfo, DatasetRecord, Manifest
from services.ingestion.domain.views import (
    CommitResult,
    DatasetList,
    DatasetSpec,
    PartResult,
    RowsPage,
    UploadResult,
    UploadState,
    upload_state,
)

router = APIRouter(prefix="/api/datasets", tags=["datasets"])
internal = APIRouter(prefix="/internal/datasets", tags=["internal"])

Name = Annotated[str, Path(pattern=DATASET_NAME, description="dataset name")]
UploadId = Annotated[str, Path(pattern=UPLOAD_ID)]
Version = Annotated[str, Path(pattern=VERSION_REF, description="a version number or 'latest'")]
Target = Annotated[
    str | None, Query(min_length=1, max_length=200, description="creates the dataset from the data if it is new")
]
TaskQuery = Annotated[Task | None, Query(description="inferred from the target when not given")]
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes the limit rather than after reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge.part(declared, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge.part(f"more than {limit}", limit)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("", status_code=201, response_model=DatasetRecord)
async def create_dataset(spec: DatasetSpec, service: ServiceDep) -> DatasetRecord:
    return await service.create_dataset(spec)


@router.get("", response_model=DatasetList)
async def list_datasets(
    service: ServiceDep, offset: Annotated[int, Query(ge=0)] = 0, limit: Annotated[int, Query(ge=1)] = 100
) -> DatasetList:
    """The datasets in order of name, a page at a time."""
    return await service.datasets(offset, limit)


@router.get("/{name}", response_model=DatasetInfo)
async def get_dataset(name: Name, service: ServiceDep) -> DatasetInfo:
    return await service.dataset(name)


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=UploadResult,
    responses={200: {"model": UploadResult, "description": "identical to the latest version"}},
)
async def upload(
    name: Name,
    request: Request,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
    target: Target = None,
    task: TaskQuery = None,
) -> UploadResult:
    """One-shot upload: CSV, a JSON list of records, or NDJSON. Answers the committed version."""
    body = await read_body(request, settings.max_part_bytes)
    result = await service.upload_once(name, body, request.headers.get("content-type"), target, task)
    if result.unchanged:
        response.status_code = 200
    return result


@router.post("/{name}/uploads", status_code=201, response_model=UploadState)
async def start_upload(name: Name, service: ServiceDep, target: Target = None, task: TaskQuery = None) -> UploadState:
    return upload_state(await service.start_upload(name, target, task))


@internal.post("/{name}/uploads", status_code=201, response_model=UploadState)
async def start_upload_with_origin(name: Name, start: UploadStart, service: ServiceDep) -> UploadState:
    """An upload of the dataset whose version keeps `origin` (a monitoring retrain) in its
    manifest; its parts and commit go through the routes of any upload."""
    return upload_state(await service.start_upload(name, start.target, start.task, start.origin))


@router.get("/{name}/uploads/{upload_id}", response_model=UploadState)
async def get_upload(name: Name, upload_id: UploadId, service: ServiceDep) -> UploadState:
    return upload_state(await service.upload_of(name, upload_id))


@router.put("/{name}/uploads/{upload_id}/parts/{number}", response_model=PartResult)
async def put_part(
    name: Name,
    upload_id: UploadId,
    number: Annotated[int, Path(ge=1, le=1_000_000)],
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
) -> PartResult:
    """One part: a self-contained body (CSV parts each start with the header line)."""
    await service.upload_of(name, upload_id)
    body = await read_body(request, settings.max_part_bytes)
    return await service.put_part(upload_id, number, body, request.headers.get("content-type"))


@router.post(
    "/{name}/uploads/{upload_id}/commit",
    status_code=201,
    response_model=CommitResult,
    responses={200: {"model": CommitResult, "description": "identical to the latest version"}},
)
async def commit(name: Name, upload_id: UploadId, response: Response, service: ServiceDep) -> CommitResult:
    await service.upload_of(name, upload_id)
    result = await service.commit(upload_id)
    if result.unchanged:
        response.status_code = 200
    return result


@router.delete("/{name}/uploads/{upload_id}", status_code=204, response_model=None)
async def abort(name: Name, upload_id: UploadId, service: ServiceDep) -> None:
    await service.upload_of(name, upload_id)
    await service.abort(upload_id)


@router.get("/{name}/versions/{version}", response_model=Manifest)
async def get_version(name: Name, version: Version, service: ServiceDep) -> Manifest:
    return await service.manifest(name, version)


@router.get("/{name}/versions/{version}/rows", response_model=RowsPage)
async def get_rows(
    name: Name,
    version: Version,
    service: ServiceDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1)] = 100,
) -> RowsPage:
    return await service.rows(name, version, offset, limit)


@router.get(
    "/{name}/versions/{version}/data",
    response_model=None,
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, PARQUET_TYPES[0]: {}}, "description": "the rows of the version"}},
)
async def download(
    name: Name,
    version: Version,
    request: Request,
    service: ServiceDep,
    format: Annotated[str | None, Query(pattern=EXPORT_FORMAT)] = None,
) -> StreamingResponse:
    """The whole version as CSV (default) or Parquet: ?format= or the Accept header chooses."""
    manifest = await service.manifest(name, version)
    accept = request.headers.get("accept", "")
    as_parquet = format == "parquet" or (format is None and any(t in accept for t in PARQUET_TYPES))
    filename = f"{name}-v{manifest.version}.{'parquet' if as_parquet else 'csv'}"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    await service.require_parts(manifest)
    # A part lost even so, while streaming, raises inside the stream: the app then drops the
    # connection without the body's end (daprd, in between, still ends it cleanly).
    tables = service.parts(manifest)
    if as_parquet:
        return StreamingResponse(
            export.parquet(tables, manifest.schema_.arrow()), media_type=PARQUET_TYPES[0], headers=headers
        )
    return StreamingResponse(export.csv(tables), media_type="text/csv", headers=headers)

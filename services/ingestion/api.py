"""Ingestion's HTTP routes: translate HTTP to service calls and back, nothing more."""

import math
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from services.ingestion.deps import ServiceDep, SettingsDep
from services.ingestion.domain.errors import TooLarge
from services.ingestion.domain.export import spreadsheet_safe
from services.ingestion.domain.schema import NAME, Task
from services.ingestion.service import DatasetSpec


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class _Route(APIRoute):
    """A 422 for a request body echoes the invalid input. Python's JSON reader takes Infinity
    and NaN, which JSON itself cannot carry: echoed back, they would make the 422 fail to
    render, as a 500. They are echoed as text instead."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                raise RequestValidationError(_finite(list(exc.errors())), body=exc.body) from None

        return checked


router = APIRouter(prefix="/api/datasets", tags=["datasets"], route_class=_Route)

Name = Annotated[str, Path(pattern=NAME, description="dataset name")]
UploadId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Version = Annotated[str, Path(pattern=r"^(latest|[0-9]+)$", description="a version number or 'latest'")]
Target = Annotated[str | None, Query(min_length=1, description="creates the dataset from the data if it is new")]
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


@router.post("", status_code=201)
async def create_dataset(spec: DatasetSpec, service: ServiceDep) -> dict[str, Any]:
    return (await service.create_dataset(spec)).model_dump(mode="json")


@router.get("")
async def list_datasets(service: ServiceDep) -> dict[str, Any]:
    return {"datasets": await service.datasets()}


@router.get("/{name}")
async def get_dataset(name: Name, service: ServiceDep) -> dict[str, Any]:
    return (await service.dataset(name)).model_dump(mode="json", exclude={"outbox"})


@router.post("/{name}/versions", status_code=201)
async def upload(name: Name, request: Request, response: Response, service: ServiceDep, settings: SettingsDep,
                 target: Target = None, task: TaskQuery = None) -> dict[str, Any]:
    """One-shot upload: CSV, a JSON list of records, or NDJSON. Answers the committed version."""
    body = await read_body(request, settings.max_part_bytes)
    result = await service.upload_once(name, body, request.headers.get("content-type"), target, task)
    if result["unchanged"]:
        response.status_code = 200
    return result


@router.post("/{name}/uploads", status_code=201)
async def start_upload(name: Name, service: ServiceDep, target: Target = None,
                       task: TaskQuery = None) -> dict[str, Any]:
    return (await service.start_upload(name, target, task)).public()


@router.get("/{name}/uploads/{upload_id}")
async def get_upload(name: Name, upload_id: UploadId, service: ServiceDep) -> dict[str, Any]:
    return (await service.upload_of(name, upload_id)).public()


@router.put("/{name}/uploads/{upload_id}/parts/{number}")
async def put_part(name: Name, upload_id: UploadId, number: Annotated[int, Path(ge=1)], request: Request,
                   service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """One part: a self-contained body (CSV parts each start with the header line)."""
    await service.upload_of(name, upload_id)
    body = await read_body(request, settings.max_part_bytes)
    return await service.put_part(upload_id, number, body, request.headers.get("content-type"))


@router.post("/{name}/uploads/{upload_id}/commit", status_code=201)
async def commit(name: Name, upload_id: UploadId, response: Response, service: ServiceDep) -> dict[str, Any]:
    await service.upload_of(name, upload_id)
    result = await service.commit(upload_id)
    if result["unchanged"]:
        response.status_code = 200
    return result


@router.delete("/{name}/uploads/{upload_id}", status_code=204)
async def abort(name: Name, upload_id: UploadId, service: ServiceDep) -> None:
    await service.upload_of(name, upload_id)
    await service.abort(upload_id)


@router.get("/{name}/versions/{version}")
async def get_version(name: Name, version: Version, service: ServiceDep) -> dict[str, Any]:
    return (await service.manifest(name, version)).model_dump(mode="json")


@router.get("/{name}/versions/{version}/rows")
async def get_rows(name: Name, version: Version, service: ServiceDep,
                   offset: Annotated[int, Query(ge=0)] = 0,
                   limit: Annotated[int, Query(ge=1)] = 100) -> dict[str, Any]:
    return await service.rows(name, version, offset, limit)


class _Chunks:
    """A write-only file for pyarrow that hands out what was written so far."""

    def __init__(self) -> None:
        self.buffer, self.position, self.closed = bytearray(), 0, False

    def write(self, data) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out, self.buffer = bytes(self.buffer), bytearray()
        return out


async def _csv(tables: AsyncIterator[pa.Table]) -> AsyncIterator[bytes]:
    first = True
    async for table in tables:
        sink = pa.BufferOutputStream()
        pacsv.write_csv(spreadsheet_safe(table), sink, pacsv.WriteOptions(include_header=first,
                                                                          quoting_style="needed"))
        first = False
        yield sink.getvalue().to_pybytes()


async def _parquet(tables: AsyncIterator[pa.Table], schema: pa.Schema) -> AsyncIterator[bytes]:
    chunks = _Chunks()
    with pq.ParquetWriter(pa.PythonFile(chunks, mode="w"), schema) as writer:
        async for table in tables:
            writer.write_table(table)
            yield chunks.take()
    yield chunks.take()


@router.get("/{name}/versions/{version}/data")
async def download(name: Name, version: Version, request: Request, service: ServiceDep,
                   format: Annotated[str | None, Query(pattern="^(csv|parquet)$")] = None) -> StreamingResponse:
    """The whole version as CSV (default) or Parquet: ?format= or the Accept header chooses."""
    manifest = await service.manifest(name, version)
    accept = request.headers.get("accept", "")
    as_parquet = format == "parquet" or (format is None and any(t in accept for t in PARQUET_TYPES))
    filename = f"{name}-v{manifest.version}.{'parquet' if as_parquet else 'csv'}"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}
    if as_parquet:
        body = _parquet(service.parts(manifest), manifest.schema_.arrow())
        return StreamingResponse(body, media_type=PARQUET_TYPES[0], headers=headers)
    return StreamingResponse(_csv(service.parts(manifest)), media_type="text/csv", headers=headers)

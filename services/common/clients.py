"""Typed clients for the calls one service makes another, over the invocation port.

The port is HTTP-shaped (a status, bytes); these read it in one place so that no caller maps
status codes or parses daprd's error bodies itself. A reply is one of:

- the callee's answer, read into its contract model (services/common/contracts);
- the sidecar's own failure (the app unreachable, no instance, a breaker open: daprd answers
  with an `ERR_` body) or a sidecar that does not answer at all: `Unreachable`, a
  SidecarUnavailable, which the kit answers with 503 and the words in `public`;
- the callee's refusal or failure: `Absent` (404), `Conflict` (409), `Refused` (any other
  4xx, 422 mostly), `Failed` (5xx). Each carries the callee's own words in `detail`; the caller
  decides what they mean for it (a missing model version, a champion that moved).

The gateway's raw forward of a client's request is not a call of these: it stays a raw forward.
"""

import json
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from services.common.contracts import Committed, Manifest, Origin, UploadStart, VersionInfo
from services.common.contracts.jobs import JobRequest
from services.common.contracts.models import (
    HistoryEntry,
    Note,
    Promotion,
    PromotionRequest,
    Registered,
    RegisterVersion,
    Traffic,
)
from services.common.contracts.monitoring import Evidence
from services.common.ports import Reply, ServiceInvoker, SidecarUnavailable, sidecar_error_code

M = TypeVar("M", bound=BaseModel)


class Unreachable(SidecarUnavailable):
    """The callee could not be reached: the sidecar said so itself, or did not answer."""


class CallError(Exception):
    """The callee answered, and not with what was asked: `detail` is its own words."""

    def __init__(self, what: str, status: int, detail: str, message: str):
        super().__init__(message)
        self.what, self.status, self.detail = what, status, detail


class Absent(CallError):
    """404: what was asked for does not exist."""

    def __init__(self, what: str, status: int, detail: str):
        super().__init__(what, status, detail, f"{what}: not found ({detail})")


class Conflict(CallError):
    """409: the callee's state is not the one the call assumed."""

    def __init__(self, what: str, status: int, detail: str):
        super().__init__(what, status, detail, f"{what}: {detail}")


class Refused(CallError):
    """Another 4xx (422 mostly): the callee will not do it, and asking again changes nothing."""

    def __init__(self, what: str, status: int, detail: str):
        super().__init__(what, status, detail, f"{what}: refused with {status}: {detail}")


class Failed(CallError):
    """5xx from the callee itself (not its sidecar): it failed, or refuses to serve what it
    holds (a damaged model file, say)."""

    def __init__(self, what: str, status: int, detail: str):
        super().__init__(what, status, detail, f"{what}: HTTP {status}: {detail}")


class Malformed(CallError):
    """A success whose body is not what the contract says."""

    def __init__(self, what: str, status: int, detail: str):
        super().__init__(what, status, detail, f"{what}: an answer that is not the contract's: {detail}")


def detail(body: bytes) -> str:
    """The callee's words in an error body: FastAPI's `detail`, the OIP's `error`, daprd's
    `errorCode: message`, else the body's start."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace")
    if isinstance(answer, dict):
        if isinstance(answer.get("detail"), str):
            return str(answer["detail"])
        if isinstance(answer.get("error"), str):
            return str(answer["error"])
        if isinstance(answer.get("errorCode"), str):
            return f"{answer['errorCode']}: {answer.get('message', '')}"
    return str(answer)[:300]


def checked(reply: Reply, what: str, service: str) -> Reply:
    """The reply when it is a success; else the exception that says which failure it is."""
    if reply.status < 300:
        return reply
    code = sidecar_error_code(reply.body)
    if code is not None:
        raise Unreachable(f"{what}: {reply.status} {detail(reply.body)}", f"{service} is unavailable")
    words = detail(reply.body)
    if reply.status == 404:
        raise Absent(what, reply.status, words)
    if reply.status == 409:
        raise Conflict(what, reply.status, words)
    if reply.status < 500:
        raise Refused(what, reply.status, words)
    raise Failed(what, reply.status, words)


class ServiceClient:
    """Calls to one service (its Dapr app id), each checked by `checked`."""

    service = "a service this request needs"  # for the client's 503, when it cannot be reached

    def __init__(self, invoker: ServiceInvoker, app_id: str):
        self.invoker, self.app_id = invoker, app_id

    async def get(self, method: str, what: str) -> Reply:
        return checked(await self.invoker.call(self.app_id, method), what, self.service)

    async def post(self, method: str, body: BaseModel | None, what: str) -> Reply:
        """`body` sent as JSON; None: an empty body."""
        if body is None:
            return await self.send("POST", method, b"", "application/json", what)
        return await self.send("POST", method, body.model_dump_json(by_alias=True).encode(), "application/json", what)

    async def send(self, verb: str, method: str, data: bytes, content_type: str, what: str) -> Reply:
        """`data` as it is (a part of an upload, say), of `content_type`."""
        reply = await self.invoker.call(self.app_id, method, verb, data, {"content-type": content_type})
        return checked(reply, what, self.service)

    @staticmethod
    def read(model: type[M], reply: Reply, what: str) -> M:
        try:
            return model.model_validate_json(reply.body)
        except ValidationError as e:
            raise Malformed(what, reply.status, str(e)) from None


class Model(BaseModel):
    """A registered model as its callers read it (GET api/models/{name}): the aliases, and how
    the champion's traffic is split (canary weights, shadows)."""

    aliases: dict[str, int] = {}
    traffic: Traffic = Traffic()


class RegistryClient(ServiceClient):
    """The registry: model versions and their files (api/), registration and promotion (internal/)."""

    service = "the registry"

    async def model(self, name: str) -> Model:
        what = f"model {name!r}"
        return self.read(Model, await self.get(f"api/models/{name}", what), what)

    async def version(self, name: str, ref: str | int) -> VersionInfo:
        """The version a number or an alias names, with its card and artifact."""
        what = f"model {name!r} version {str(ref)!r}"
        return self.read(VersionInfo, await self.get(f"api/models/{name}/versions/{ref}", what), what)

    async def artifact(self, name: str, version: int) -> bytes:
        """The version's model file, as stored (the caller checks it against the sha256)."""
        reply = await self.get(
            f"api/models/{name}/versions/{version}/artifact", f"the artifact of model {name!r} version {version}"
        )
        return reply.body

    async def onnx(self, name: str, version: int) -> bytes:
        """The version's ONNX file, as stored (the caller checks it against the sha256 of the
        version's `onnx.artifact`); Absent when it has none."""
        reply = await self.get(
            f"api/models/{name}/versions/{version}/onnx", f"the ONNX file of model {name!r} version {version}"
        )
        return reply.body

    async def register(self, name: str, body: RegisterVersion) -> Registered:
        what = f"registering a version of model {name!r}"
        return self.read(Registered, await self.post(f"internal/models/{name}/versions", body, what), what)

    async def promote(self, name: str, version: int, body: PromotionRequest) -> Promotion:
        """Conflict (409) when the champion is no longer the one `body` names."""
        what = f"promoting model {name!r} version {version}"
        method = f"internal/models/{name}/versions/{version}/promotion"
        return self.read(Promotion, await self.post(method, body, what), what)

    async def note(self, name: str, note: Note) -> HistoryEntry:
        """Records a `monitoring.*` action in the model's history; Absent (404) when there is no
        such model. Not idempotent: each call adds an entry."""
        what = f"recording {note.action} in the history of model {name!r}"
        return self.read(HistoryEntry, await self.post(f"internal/models/{name}/history", note, what), what)


class IngestionClient(ServiceClient):
    """Ingestion: committed dataset versions and their rows (api/); uploads of a version with
    an origin, a monitoring retrain's (started in internal/, then as any upload)."""

    service = "the ingestion service"

    async def manifest(self, dataset: str, version: int | str) -> Manifest:
        """The version's manifest (its schema, above all); `version` a number or 'latest'."""
        what = f"dataset {dataset!r} version {version}"
        return self.read(Manifest, await self.get(f"api/datasets/{dataset}/versions/{version}", what), what)

    async def rows(self, dataset: str, version: int) -> bytes:
        """The version's rows as one Parquet file."""
        what = f"the rows of dataset {dataset!r} version {version}"
        reply = await self.get(f"api/datasets/{dataset}/versions/{version}/data?format=parquet", what)
        return reply.body

    async def start_upload(self, dataset: str, origin: Origin) -> str:
        """An upload of the dataset whose version keeps `origin`; answers its id. Absent (404)
        when the dataset has no version `origin.base_version`."""
        what = f"starting an upload of dataset {dataset!r}"
        reply = await self.post(f"internal/datasets/{dataset}/uploads", UploadStart(origin=origin), what)
        return self.read(UploadStarted, reply, what).upload_id

    async def put_part(self, dataset: str, upload_id: str, number: int, body: bytes, content_type: str) -> None:
        """One part of the upload (CSV with its header line, a JSON list of records, or NDJSON);
        sending the same part again stores nothing again. Refused (422) when no row of it is valid."""
        what = f"part {number} of upload {upload_id!r} of dataset {dataset!r}"
        await self.send("PUT", f"api/datasets/{dataset}/uploads/{upload_id}/parts/{number}", body, content_type, what)

    async def commit(self, dataset: str, upload_id: str) -> Committed:
        """The upload's parts as the dataset's next version; `unchanged` when they hold what the
        latest version holds (then it is the version answered). Committing again answers the same."""
        what = f"committing upload {upload_id!r} of dataset {dataset!r}"
        reply = await self.post(f"api/datasets/{dataset}/uploads/{upload_id}/commit", None, what)
        return self.read(Committed, reply, what)


class UploadStarted(BaseModel):
    """An upload session as ingestion answers its start: its id, which the parts and the commit name."""

    upload_id: str


class Submitted(BaseModel):
    """A training job as training answers its submission (POST api/training/jobs): its id."""

    id: str


class TrainingClient(ServiceClient):
    """Training: jobs (api/)."""

    service = "the training service"

    async def submit(self, request: JobRequest) -> str:
        """Starts the job (the same request again answers the same job, unless it failed or was
        canceled: then a new attempt); answers its id. Refused (429) when too many jobs wait."""
        what = f"a training job on dataset {request.dataset!r} version {request.version}"
        return self.read(Submitted, await self.post("api/training/jobs", request, what), what).id


class MonitorClient(ServiceClient):
    """The monitor: a rollout's evidence (internal/)."""

    service = "the monitor"

    async def evidence(self, name: str, since: datetime) -> Evidence:
        """What a rollout step's gates read for every version of the model: serving counters
        summed over the inference replicas (cumulative: Evidence.delta subtracts the reading taken
        at the step's start), each shadow's agreement and each version's live metrics over what was
        captured since `since`. An empty one for a model the monitor knows nothing of."""
        what = f"the evidence of model {name!r}"
        method = f"internal/models/{name}/evidence?{urlencode({'since': since.isoformat()})}"
        return self.read(Evidence, await self.get(method, what), what)

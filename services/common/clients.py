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
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from services.common.contracts import Manifest, VersionInfo
from services.common.contracts.models import (
    HistoryEntry,
    Note,
    Promotion,
    PromotionRequest,
    Registered,
    RegisterVersion,
)
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

    async def post(self, method: str, body: BaseModel, what: str) -> Reply:
        data = body.model_dump_json(by_alias=True).encode()
        reply = await self.invoker.call(self.app_id, method, "POST", data, {"content-type": "application/json"})
        return checked(reply, what, self.service)

    @staticmethod
    def read(model: type[M], reply: Reply, what: str) -> M:
        try:
            return model.model_validate_json(reply.body)
        except ValidationError as e:
            raise Malformed(what, reply.status, str(e)) from None


class Model(BaseModel):
    """A registered model as its callers read it (GET api/models/{name}): the aliases."""

    aliases: dict[str, int] = {}


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
    """Ingestion: committed dataset versions and their rows."""

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

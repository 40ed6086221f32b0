"""The Jobs port over the sidecar's Jobs API (stable in Dapr 1.18), and the route the sidecar
triggers jobs on.

Scheduling goes through the sidecar's HTTP API, POST/DELETE /v1.0/jobs/<name> (the SDK 1.18.3
has the same calls over gRPC, `schedule_job` and `delete_job`, but there a job's data is a
protobuf Any that reaches an HTTP app as its raw bytes; over HTTP it is a JSON value, which the
sidecar hands back as the JSON body of the trigger). When a job fires, the scheduler streams it
to a sidecar of the app that scheduled it, which calls the app at POST /job/<name>
(daprd 1.18.2, pkg/channel/http/http_channel.go) with the app token; an answer other than 2xx
fails the trigger, retried as the job's failure policy says (by default 3 times, 1 s apart).

The scheduler keeps jobs per namespace and app id; names here carry the deployment's prefix
too (ServiceSettings.topic_prefix, as topics do), so that a service reading a job name knows it
is one of its deployment's.
"""

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.common.dapr_adapters.sidecar import NOT_ANSWERING, Sidecar
from services.common.dapr_adapters.subscriptions import _from_sidecar
from services.common.errors import ClientError
from services.common.ports import ConcurrencyConflict, JobHandler, ScheduleRefused, SidecarUnavailable
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)

UNAVAILABLE = "the scheduler (Dapr Jobs) is unavailable"
MAX_DATA_BYTES = 64 * 1024
"""A job's data is a few names: a trigger bigger than this is not ours."""
# What the scheduler's cron parser says of a schedule it cannot read (dapr/kit cron/parser.go),
# which daprd passes on in the message of its DAPR_SCHEDULER_SCHEDULE_JOB error.
_PARSER_WORDS = (
    "expected exactly",
    "failed to parse",
    "unrecognized descriptor",
    "beginning of range",
    "end of range",
    "too many hyphens",
    "too many slashes",
    "step of range",
    "negative number",
    "provided bad location",
    "empty spec",
    "invalid duration",
)


def job_name(settings: ServiceSettings, name: str) -> str:
    """The name the scheduler knows a job of this service by."""
    return f"{settings.topic_prefix}{name}"


class DaprJobs:
    def __init__(self, sidecar: Sidecar, prefix: str = ""):
        self.sidecar, self.prefix = sidecar, prefix

    def _path(self, name: str) -> str:
        return f"/v1.0/jobs/{quote(self.prefix + name, safe='')}"

    async def schedule(
        self, name: str, schedule: str, data: Mapping[str, Any] | None = None, overwrite: bool = True
    ) -> None:
        body = {"schedule": schedule, "data": dict(data or {}), "overwrite": overwrite}
        reply = await self._call("POST", name, body)
        if reply.is_success:
            return
        words = _words(reply)
        if reply.status_code == 409:
            raise ConcurrencyConflict(f"job {name!r} exists already: {words}")
        if reply.status_code == 400 or any(w in words for w in _PARSER_WORDS):
            raise ScheduleRefused(f"the scheduler refused the schedule {schedule!r}: {words}")
        raise SidecarUnavailable(f"scheduling job {name!r}: HTTP {reply.status_code} {words}", UNAVAILABLE)

    async def delete(self, name: str) -> None:
        reply = await self._call("DELETE", name)
        if reply.is_success or reply.status_code == 404 or "not found" in _words(reply).lower():
            return
        raise SidecarUnavailable(f"deleting job {name!r}: HTTP {reply.status_code} {_words(reply)}", UNAVAILABLE)

    async def _call(self, verb: str, name: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            return await self.sidecar.http.request(verb, self._path(name), json=body)
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(f"{verb} job {name!r}: the sidecar did not answer: {exc}", NOT_ANSWERING) from exc


def _words(reply: httpx.Response) -> str:
    try:
        error = reply.json()
    except ValueError:
        return reply.text[:500]
    if isinstance(error, dict):
        return f"{error.get('errorCode', '')}: {error.get('message', '')}"[:1000]
    return str(error)[:500]


def declare_jobs(app: FastAPI, settings: ServiceSettings, handlers: Mapping[str, JobHandler]) -> None:
    """The route the sidecar triggers this service's jobs on, POST /job/<name>: a job named
    `<prefix><kind>.<key>` goes to handlers[kind](key, data)."""
    prefix = job_name(settings, "")

    async def trigger(name: str, request: Request) -> JSONResponse:
        if not _from_sidecar(request, settings):
            return JSONResponse({"detail": "job triggers come from this app's Dapr sidecar only"}, status_code=401)
        kind, _, key = name.removeprefix(prefix).partition(".")
        handler = handlers.get(kind) if name.startswith(prefix) and key else None
        if handler is None:
            # Not this deployment's job, or no longer a kind this service has: no retry will change that.
            log.warning("job %r triggered here, which handles none of that name", name)
            return JSONResponse({"detail": f"no job {name!r} here"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_DATA_BYTES:
            return JSONResponse({"detail": "job data too large"}, status_code=413)
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            data = {}
        try:
            await handler(key, data if isinstance(data, dict) else {"value": data})
        except ClientError as exc:
            log.warning("job %s dropped: %s", name, exc)
            return JSONResponse({"status": "dropped", "detail": str(exc)})
        except (SidecarUnavailable, ConcurrencyConflict) as exc:
            log.warning("job %s failed, the scheduler may retry it: %s", name, exc)
            return JSONResponse({"detail": str(exc)}, status_code=503)
        except Exception as exc:
            log.error("job %s failed, the scheduler may retry it: %r", name, exc, exc_info=exc)
            return JSONResponse({"detail": f"job {name} failed"}, status_code=500)
        return JSONResponse({"status": "done"})

    app.add_api_route("/job/{name}", trigger, methods=["POST"], include_in_schema=False)

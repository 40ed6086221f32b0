"""The stack's status and the round trip check: the gateway asks every service through Dapr.
Knows nothing of HTTP routes."""

import asyncio
import json
import time
from typing import Any

from services.common.ports import NotFound, SecretStore, ServiceInvoker, SidecarUnavailable
from services.common.roundtrip import PREFIX, step
from services.gateway.settings import Settings
from services.gateway.status.instances import Instances

ROUNDTRIP = PREFIX.lstrip("/")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


async def service_status(invoker: ServiceInvoker, app_ids: dict[str, str]) -> list[dict[str, Any]]:
    """Asks every service's /readyz through Dapr service invocation, all at once."""

    async def one(name: str, app_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "service": name,
            "app_id": app_id,
            "reachable": False,
            "runtime_version": None,
            "error": None,
        }
        try:
            reply = await invoker.call(app_id, "readyz")
        except SidecarUnavailable as exc:
            return entry | {"error": str(exc)}
        body = _json(reply.body)
        entry["reachable"] = reply.status == 200 and body.get("ready") is True
        entry["runtime_version"] = body.get("runtime_version")
        if not entry["reachable"]:
            entry["error"] = body.get("reason") or f"HTTP {reply.status}: {reply.body[:200]!r}"
        return entry

    return list(await asyncio.gather(*(one(n, a) for n, a in app_ids.items())))


class Status:
    """The stack as the gateway sees it, built once with what it asks through."""

    def __init__(self, invoker: ServiceInvoker, secrets: SecretStore, settings: Settings, instances: Instances):
        self.invoker, self.secrets, self.settings, self.instances = invoker, secrets, settings, instances

    async def report(self) -> dict[str, Any]:
        """Every service, reachable or not, with its instances, up or down by their heartbeats."""
        services = await service_status(self.invoker, self.settings.app_ids())
        for entry in services:
            entry["instances"] = self.instances.of(entry["app_id"])
        ok = all(s["reachable"] and all(i["up"] for i in s["instances"]) for s in services)
        return {"ok": ok, "services": services}

    async def roundtrip(self, run_id: str) -> dict[str, Any]:
        """Exercises invocation, secrets, blobs, state with ETags and pub/sub across the stack."""
        settings, invoker = self.settings, self.invoker
        steps = []
        status = await service_status(invoker, settings.app_ids())
        up = [s for s in status if s["reachable"]]
        versions = sorted({str(s["runtime_version"]) for s in up})
        steps.append(
            step(
                "invocation",
                len(up) == len(status),
                f"{len(up)}/{len(status)} services answered /readyz through Dapr "
                f"(sidecar runtime {', '.join(versions) or 'unknown'})",
            )
        )

        try:
            secret = await self.secrets.get(settings.gateway_secret)
            steps.append(step("secret", True, f"read secret {settings.gateway_secret!r} with keys {sorted(secret)}"))
        except (NotFound, SidecarUnavailable) as exc:
            steps.append(step("secret", False, str(exc)))

        ingestion, training = settings.ingestion_app_id, settings.training_app_id
        try:
            reply = await invoker.call(ingestion, f"{ROUNDTRIP}/{run_id}", "POST")
            if reply.status == 200:
                steps.extend(_json(reply.body).get("steps", []))
            else:
                steps.append(step("send", False, f"{ingestion} answered HTTP {reply.status}: {reply.body[:200]!r}"))
            steps.extend(await _await_receipt(invoker, training, run_id, settings.roundtrip_timeout_s))
        except SidecarUnavailable as exc:
            steps.append(step("send", False, str(exc)))
        finally:
            await _cleanup(invoker, [ingestion, training], run_id)
        return {"run_id": run_id, "ok": all(s["ok"] for s in steps), "steps": steps}


async def _await_receipt(invoker: ServiceInvoker, app_id: str, run_id: str, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = await invoker.call(app_id, f"{ROUNDTRIP}/{run_id}")
        if reply.status == 200:
            record = _json(reply.body)
            return [
                step(
                    "subscription",
                    True,
                    f"{record.get('received_by')} received event {record.get('event_id')} "
                    f"from {record.get('event_source')}",
                ),
                step("blob read", bool(record.get("blob_ok")), str(record.get("blob_detail"))),
            ]
        if time.monotonic() >= deadline:
            return [step("subscription", False, f"{app_id} had not received the ping after {timeout_s:.0f}s")]
        await asyncio.sleep(0.2)


async def _cleanup(invoker: ServiceInvoker, app_ids: list[str], run_id: str) -> None:
    for app_id in app_ids:
        try:
            await invoker.call(app_id, f"{ROUNDTRIP}/{run_id}", "DELETE")
        except SidecarUnavailable:
            pass  # best effort: what it left is tiny and keyed by the run id

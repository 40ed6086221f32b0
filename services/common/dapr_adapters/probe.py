"""The SidecarProbe port: whether the sidecar answers, what it runs, and this instance's heartbeats."""

import httpx

from services.common import events
from services.common.dapr_adapters.pubsub import DaprPublisher
from services.common.dapr_adapters.sidecar import NOT_ANSWERING, Sidecar
from services.common.ports import SidecarInfo, SidecarUnavailable


class DaprProbe:
    """Health and metadata from the sidecar's HTTP API; heartbeats through the replica pub/sub
    component (every gateway replica hears each one)."""

    def __init__(self, sidecar: Sidecar):
        self.sidecar = sidecar
        settings = sidecar.settings
        self._heartbeats = DaprPublisher(
            sidecar,
            settings.pubsub,
            f"/daprml/{settings.app_id}",
            settings.topic_prefix,
            replica_pubsub=settings.replica_pubsub,
        )

    async def healthy(self) -> bool:
        return await self.sidecar.healthy()

    async def info(self) -> SidecarInfo:
        try:
            reply = await self.sidecar.http.get("/v1.0/metadata")
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            raise SidecarUnavailable(
                f"sidecar at {self.sidecar.http_url} did not answer /v1.0/metadata: {exc}", NOT_ANSWERING
            ) from exc
        meta = reply.json()
        return SidecarInfo(
            app_id=meta.get("id", ""),
            runtime_version=meta.get("runtimeVersion", ""),
            components=meta.get("components", []),
        )

    async def announce(self, heartbeat: events.InstanceHeartbeat) -> None:
        await self._heartbeats.publish(events.EventType.INSTANCE_HEARTBEAT, heartbeat)

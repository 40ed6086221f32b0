"""Each model's traffic table (canary weights, shadows) as the registry holds it, kept in memory
like the aliases: fetched on a model's first request, fetched again when the registry says it
changed (the `model traffic changed` event, which every replica receives) and by the periodic
reconcile, which catches an event a replica missed. The request path asks the registry nothing
for a model whose table is known.

A table that names versions not loaded yet has them loaded when it arrives (off the request
path), so that the first request a canary serves does not wait for its file.
"""

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.clients import Absent, CallError, RegistryClient
from services.common.contracts.models import Traffic
from services.common.events import ModelTrafficChanged
from services.common.ports import SidecarUnavailable
from services.inference.domain.routing import canary_for, point, shadows_for

log = logging.getLogger(__name__)

EMPTY = Traffic()


class TrafficTables:
    def __init__(
        self,
        registry: RegistryClient,
        preload: Callable[[str, int], Awaitable[Any]] | None = None,
        draw: Callable[[], float] = random.random,
    ):
        self.registry, self.preload, self.draw = registry, preload, draw
        self._tables: dict[str, Traffic] = {}

    def known(self, name: str) -> Traffic | None:
        return self._tables.get(name)

    async def table(self, name: str) -> Traffic:
        """The model's table: from memory, else from the registry (a registry that cannot answer
        gives the empty table, the reconcile asks again)."""
        found = self._tables.get(name)
        if found is None:
            found = await self._fetch(name)
        return found

    async def canary(self, name: str, key: str | None) -> int | None:
        """The canary version a request for the champion goes to; None: the champion serves it."""
        table = await self.table(name)
        return canary_for(table, point(name, key, self.draw)) if table.canary else None

    def shadows(self, name: str) -> list[int]:
        """The shadow versions a request for the champion is copied to (the table is known: the
        request was routed first)."""
        table = self._tables.get(name)
        return shadows_for(table, self.draw) if table is not None and table.shadows else []

    async def _fetch(self, name: str) -> Traffic:
        try:
            table = (await self.registry.model(name)).traffic
        except Absent:
            table = EMPTY  # no such model yet: its first request will be a 404 from the alias anyway
        except (CallError, SidecarUnavailable) as exc:
            log.warning("the traffic table of model %s could not be read; serving the champion: %s", name, exc)
            table = EMPTY
        before = self._tables.get(name)
        self._tables[name] = table
        if before is not None and before != table:
            log.info("model %s traffic: %s", name, table.model_dump(mode="json"))
        if self.preload is not None:
            for version in sorted(table.versions - (before.versions if before else set())):
                try:
                    await self.preload(name, version)
                except Exception as exc:  # a version that cannot load: the requests it gets fall back
                    log.warning(
                        "model %s version %s (in its traffic table) could not be loaded: %s", name, version, exc
                    )
        return table

    async def on_traffic_changed(self, attributes: dict[str, Any], event: ModelTrafficChanged) -> None:
        """Asks the registry again for a table served here (events come late or twice: the
        registry's answer is the current one); a model not served here is read on its first request."""
        if event.model in self._tables:
            await self._fetch(event.model)

    async def reconcile(self) -> None:
        for name in list(self._tables):
            await self._fetch(name)

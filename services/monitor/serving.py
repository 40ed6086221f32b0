"""The inference replicas' serving stats, kept per model (domain/serving.py): each ServingStats
event updates the document of every model it counts, by compare-and-swap, and a read sums a
model's document over its instances."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.contracts.monitoring import ServingCounters, VersionServing
from services.common.events import ServingStats
from services.common.state import Documents
from services.monitor.domain.serving import ServingDocument, counters_of, latest, summed


def serving_key(model: str) -> str:
    return f"serving-stats:{model}"


class ServingKeeper:
    def __init__(
        self,
        documents: Documents[ServingDocument],
        forget_h: float,
        max_instances: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.documents, self.forget, self.max_instances = documents, timedelta(hours=forget_h), max_instances
        self.clock = clock

    async def on_serving_stats(self, attributes: dict[str, Any], event: ServingStats) -> None:
        """Keeps the instance's counters in each model's document (bounded by the event's own
        bound on versions). Written model by model: a retry after a failure half way finds the
        models done already holding this event's `at`, and changes nothing there."""
        for model, versions in counters_of(event.versions, event.latency_bounds_ms).items():

            def change(
                document: ServingDocument | None, model: str = model, versions: dict[int, ServingCounters] = versions
            ) -> ServingDocument | None:
                return latest(
                    document,
                    model,
                    event.instance,
                    event.started_at,
                    event.at,
                    versions,
                    self.clock(),
                    self.forget,
                    self.max_instances,
                )

            await self.documents.update(serving_key(model), change)

    async def totals(self, model: str) -> list[VersionServing]:
        """Each version's counters summed over every instance heard (and those forgotten)."""
        return summed(await self.documents.get(serving_key(model)), model)

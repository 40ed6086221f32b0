"""The evidence a rollout's gates judge, from the monitor (GET /internal/models/{name}/evidence):
read as it is at each poll, and turned into what a step has seen since its first reading."""

from datetime import datetime
from typing import Any

from services.common.clients import MonitorClient
from services.common.contracts.monitoring import Evidence, LiveOfVersion, ServingDelta
from services.registry.domain.rollout import StepEvidence, VersionReading


class MonitorEvidence:
    def __init__(self, monitor: MonitorClient):
        self.monitor = monitor

    async def read(self, name: str, since: datetime) -> dict[str, Any]:
        return (await self.monitor.evidence(name, since)).model_dump(mode="json")

    def step(self, baseline: dict[str, Any], now: dict[str, Any], candidate: int, champion: int) -> dict[str, Any]:
        before, current = Evidence.model_validate(baseline), Evidence.model_validate(now)
        primary = current.live.primary
        shadow = current.shadow(candidate)
        evidence = StepEvidence(
            candidate=_reading(current.delta(candidate, before), current.live_of(candidate), primary),
            champion=_reading(current.delta(champion, before), current.live_of(champion), primary),
            shadow_pairs=shadow.pairs if shadow else 0,
            agreement=shadow.agreement if shadow else None,
            mean_abs_difference=shadow.mean_abs_difference if shadow else None,
        )
        return evidence.model_dump(mode="json")


def _reading(served: ServingDelta, live: LiveOfVersion | None, primary: str | None) -> VersionReading:
    metric = live.metrics.get(primary) if live is not None and primary else None
    return VersionReading(
        requests=served.requests + served.failures,  # every request it took: answered or failed
        failures=served.failures,
        p99_ms=served.latency_ms(0.99),
        live_metric=primary if metric else None,
        live_value=metric.value if metric else None,
        live_count=metric.count if metric else 0,
    )

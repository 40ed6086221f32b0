"""Serving stats: this replica's counters per model version, cumulative since it started (requests
answered, failed, refused, shadow copies answered and failed, the answered requests' latency
histogram), sent as ServingStats events on `pubsub` for the monitor, which sums every replica's
(the rollouts' evidence: error rate and latency per version across the replicas; Prometheus has
them per replica only).

The data plane counts each request here once it knows the version (not a request for a model
that does not exist: nothing to count it under), and a failure of a canary version that cannot
be loaded for each request routed to it (the champion answers those); the shadows count their
copies. A background
task sends the counters every interval when they changed since the last event that was sent,
and every KEEPALIVE_S anyway (so that the monitor does not forget a replica that is idle). An
event holds every version counted, up to MAX_SERVING_VERSIONS (the most recently served); being
cumulative, a lost or repeated event is harmless: the latest of an instance wins.
"""

import bisect
import itertools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from services.common.contracts.monitoring import LATENCY_BOUNDS_MS, MAX_SERVING_VERSIONS, VersionServing
from services.common.events import EventType, ServingStats
from services.common.ports import EventPublisher

log = logging.getLogger(__name__)

KEEPALIVE_S = 600.0
"""Counters that did not change are sent again after this long: the monitor forgets an instance
it has not heard from for DAPRML_SERVING_FORGET_H (24 h by default), meaning a replica gone."""
MAX_COUNTED = 10 * MAX_SERVING_VERSIONS
"""Model versions counted at most; past it the least recently served is let go (its counts with it)."""

Outcome = Literal["answered", "failed", "refused"]


@dataclass(slots=True)
class _Counts:
    requests: int = 0
    failures: int = 0
    refused: int = 0
    shadow_requests: int = 0
    shadow_failures: int = 0
    # Per bucket (not cumulative, one more than the bounds: +Inf); cumulated when sent.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    touched: int = 0  # the tally's tick when last counted: which versions an event keeps

    def of(self, model: str, version: int) -> VersionServing:
        cumulative = list(itertools.accumulate(self.buckets)) if self.requests else []
        return VersionServing(
            model=model,
            version=version,
            requests=self.requests,
            failures=self.failures,
            refused=self.refused,
            shadow_requests=self.shadow_requests,
            shadow_failures=self.shadow_failures,
            latency_counts=cumulative,
        )


def instance_id(host: str, sidecar_port: int, started_at: datetime) -> str:
    """Unique per run of a replica: a replica that restarts is a new instance, counting from zero."""
    return f"{host}:{sidecar_port}:{started_at.strftime('%Y%m%dT%H%M%S.%fZ')}"


class ServingTally:
    def __init__(
        self,
        publisher: EventPublisher,
        sidecar_port: int,
        *,
        max_versions: int = MAX_SERVING_VERSIONS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.publisher, self.max_versions, self.clock, self.monotonic = publisher, max_versions, clock, monotonic
        self.started_at = clock()
        self.instance = instance_id(socket.gethostname(), sidecar_port, self.started_at)
        self._counts: dict[tuple[str, int], _Counts] = {}
        self._tick = 0  # bumped by every count: the counters changed since an event when it moved
        self._sent_tick = 0
        self._sent_at = -KEEPALIVE_S  # monotonic time of the last event sent
        self._left_out_logged = 0

    def _entry(self, model: str, version: int) -> _Counts:
        self._tick += 1
        counts = self._counts.get((model, version))
        if counts is None:
            counts = self._counts[(model, version)] = _Counts()
            if len(self._counts) > MAX_COUNTED:
                oldest = min(self._counts, key=lambda k: self._counts[k].touched)
                del self._counts[oldest]
                log.warning("serving stats: more than %d model versions served; %s let go", MAX_COUNTED, oldest)
        counts.touched = self._tick
        return counts

    def request(self, model: str, version: int, outcome: Outcome, seconds: float) -> None:
        """A request the version served (not a shadow copy): answered (its latency counted),
        failed (the version or the server: a 5xx) or refused (the caller's fault: a 4xx)."""
        counts = self._entry(model, version)
        if outcome == "answered":
            counts.requests += 1
            counts.buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, seconds * 1000)] += 1
        elif outcome == "failed":
            counts.failures += 1
        else:
            counts.refused += 1

    def shadow(self, model: str, version: int, failed: bool) -> None:
        """A copy of a request the version answered (or failed: raised, timed out) as a shadow."""
        counts = self._entry(model, version)
        if failed:
            counts.shadow_failures += 1
        else:
            counts.shadow_requests += 1

    def event(self) -> ServingStats:
        """The counters as an event: the most recently served versions, up to the bound."""
        kept = sorted(self._counts.items(), key=lambda kv: kv[1].touched, reverse=True)[: self.max_versions]
        left_out = len(self._counts) - len(kept)
        if left_out != self._left_out_logged:
            self._left_out_logged = left_out
            if left_out:
                log.warning(
                    "serving stats: %d model versions served here do not fit one event (at most %d); "
                    "the least recently served are left out",
                    left_out,
                    self.max_versions,
                )
        return ServingStats(
            instance=self.instance,
            started_at=self.started_at,
            at=max(self.clock(), self.started_at),
            latency_bounds_ms=list(LATENCY_BOUNDS_MS),
            versions=[counts.of(model, version) for (model, version), counts in sorted(kept)],
            left_out=left_out,
        )

    async def send(self) -> None:
        """The background job: sends the counters when they changed since the last event sent,
        or KEEPALIVE_S after it. A refused publish raises (logged by the job) and is tried again
        at the next interval."""
        tick, now = self._tick, self.monotonic()
        if not self._counts or (tick == self._sent_tick and now - self._sent_at < KEEPALIVE_S):
            return
        await self.publisher.publish(EventType.INFERENCE_SERVING_STATS, self.event())
        self._sent_tick, self._sent_at = tick, now

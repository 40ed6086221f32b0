"""Which instances of each service are alive, from their heartbeats.

Every instance of every Python service announces itself through its own sidecar every few
seconds (the kit's Heartbeat), on the replica pub/sub component, so each gateway replica hears
all of them. An instance is up while its heartbeats keep coming; one that stopped (it died, or
its sidecar did, through which it announces) is down until it comes back or is forgotten. One
that announced it was leaving is forgotten at once. Kept in memory: a restarted gateway reads
the topic from its start, and each heartbeat carries the time it was sent.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from services.common.events import InstanceHeartbeat

MISSED_BEATS = 3  # heartbeats missed in a row before an instance counts as down


def _now() -> datetime:
    return datetime.now(UTC)


class Instances:
    def __init__(self, forget_after_s: float, now: Callable[[], datetime] = _now):
        self.forget_after_s, self.now = forget_after_s, now
        self._last: dict[tuple[str, str], InstanceHeartbeat] = {}

    async def heard(self, _attributes: dict[str, Any], heartbeat: InstanceHeartbeat) -> None:
        """The subscription handler of instance heartbeats (they may come late, twice or out of order)."""
        key = (heartbeat.app_id, heartbeat.instance)
        last = self._last.get(key)
        if last is not None and last.at >= heartbeat.at:
            return
        if heartbeat.leaving:
            self._last.pop(key, None)
        elif self._age_s(heartbeat) <= self.forget_after_s:
            self._last[key] = heartbeat

    def of(self, app_id: str) -> list[dict[str, Any]]:
        """The instances of one app id heard from lately, each up or down, by name."""
        for key in [k for k, beat in self._last.items() if self._age_s(beat) > self.forget_after_s]:
            del self._last[key]
        found = []
        for (app, instance), beat in sorted(self._last.items()):
            if app != app_id:
                continue
            silent_s = max(0.0, self._age_s(beat))
            up = silent_s <= MISSED_BEATS * beat.interval_s
            found.append(
                {
                    "instance": instance,
                    "up": up,
                    "last_heartbeat_s": round(silent_s, 1),
                    "started_at": beat.started_at,
                    "error": None if up else f"no heartbeat for {silent_s:.0f}s: the instance or its sidecar is down",
                }
            )
        return found

    def _age_s(self, beat: InstanceHeartbeat) -> float:
        return (self.now() - beat.at).total_seconds()

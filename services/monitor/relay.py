"""The monitoring outbox's relay: what a model's monitoring record owes others, sent in order and
removed once sent, at least once. History entries go to the registry, drift events to pub/sub,
and retrain orders are carried out (retrain.py), by the background relay only: a retrain reads
and uploads a whole dataset, which a drift check asked for over HTTP does not wait for.
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

from services.common.clients import Absent, Refused, RegistryClient
from services.common.contracts.models import Note
from services.common.events import EventType
from services.common.outbox import flush_each
from services.common.ports import EventPublisher
from services.common.state import Documents
from services.monitor.domain.actions import bounded
from services.monitor.domain.record import MonitoringRecord, Owed, with_retrain_done, without_sent
from services.monitor.domain.reports import ActionTaken
from services.monitor.domain.retrain import RetrainOrder
from services.monitor.metrics import MonitorMetrics
from services.monitor.retrain import Retrainer

log = logging.getLogger(__name__)

NAMES_KEY = "monitoring:models"
"""The names of the models with a record (a state store cannot list its keys)."""


def record_key(model: str) -> str:
    return f"monitoring:{model}"


class Relay:
    def __init__(
        self,
        records: Documents[MonitoringRecord],
        registry: RegistryClient,
        publisher: EventPublisher,
        metrics: MonitorMetrics,
        retrainer: Retrainer | None,
        clock: Callable[[], datetime],
    ):
        self.records, self.registry, self.publisher = records, registry, publisher
        self.metrics, self.retrainer, self.clock = metrics, retrainer, clock
        self._locks: dict[str, asyncio.Lock] = {}

    async def flush(self, model: str, retrains: bool = False) -> int:
        """Sends what the model's record owes, in order, and removes what went; returns how many.
        What the registry refuses (a model gone, a note it will not take) is let go, logged.
        Retrain orders are carried out only with `retrains` (the background relay's). One flush
        of a model at a time in this process: a history entry is not idempotent."""
        lock = self._locks.setdefault(model, asyncio.Lock())
        async with lock:
            return await self._flush(model, retrains)

    async def _flush(self, model: str, retrains: bool) -> int:
        record = await self.records.get(record_key(model))
        if record is None or not record.outbox:
            return 0
        sent: set[str] = set()
        done = 0
        try:
            for item in record.outbox:
                if item.kind == "retrain":
                    if retrains and item.retrain is not None and self.retrainer is not None:
                        try:
                            await self._retrain(model, item.id, item.retrain)
                            done += 1
                        except Exception as exc:  # a service away: the order stays owed, the rest goes on
                            log.warning("retrain %s of %s not done yet, will retry: %s", item.id, model, exc)
                    continue
                if item.kind == "note" and item.note is not None:
                    try:
                        await self.registry.note(model, item.note)
                    except (Absent, Refused) as exc:
                        log.warning("history entry %s of %s let go: %s", item.id, model, exc)
                        self.metrics.owed_dropped.inc()
                elif item.drift is not None:
                    await self.publisher.publish(
                        EventType.MODEL_DRIFT_DETECTED, item.drift, subject=model, event_id=item.id
                    )
                sent.add(item.id)
        finally:
            if sent:
                await self.records.update(record_key(model), partial(without_sent, sent=sent))
        return len(sent) + done

    async def _retrain(self, model: str, item_id: str, order: RetrainOrder) -> None:
        """Carries the order out and records what became of it, in one write: the order leaves
        the outbox, its outcome joins the actions and its history entry is owed (sent next)."""
        assert self.retrainer is not None
        outcome = await self.retrainer.run(order)
        log.info("retrain %s of %s: %s (%s)", order.id, model, outcome.action, outcome.reason)
        self.metrics.retrains.labels(outcome.action).inc()
        action = ActionTaken(
            at=self.clock(),
            check_id=order.check_id,
            version=order.version,
            action=outcome.action,
            reason=outcome.reason,
        )
        note = Note(
            action=f"monitoring.{outcome.action}",
            reason=outcome.reason[:2000],
            details=bounded({**outcome.details, "retrain_id": order.id, "check_id": order.check_id}),
            actor=order.actor,
        )
        owed = [Owed(id=f"{order.id}-done", kind="note", note=note)]
        await self.records.update(
            record_key(model), partial(with_retrain_done, order_id=item_id, action=action, owed=owed)
        )

    async def flush_all(self, names: list[str]) -> None:
        await flush_each(names, partial(self.flush, retrains=True), "monitored model")

    async def flush_quietly(self, model: str) -> None:
        try:
            await self.flush(model)
        except Exception as exc:  # stored and owed: the background relay sends it later
            log.warning("what monitoring owes for %s is not sent yet, will retry: %s", model, exc)

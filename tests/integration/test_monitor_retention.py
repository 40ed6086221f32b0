"""Retention on the real stack: parts of a day past DAPRML_RETENTION_DAYS are deleted by the
retention job, fired by Dapr's scheduler on the monitor, and recent ones kept.

The monitor writes parts only at the time of the rows it is given (capture, feedback), so a day
31 days old cannot come through its API, and its retention (30 days) cannot be shortened on the
shared stack. So the test writes them as the monitor does: the monitor's own table code (its
PartTable, which also lists the model for retention) over the monitor's sidecar, into its state
store and blob binding. Then it makes the retention job fire soon, by scheduling it again with
a short interval through the same sidecar's Jobs API (as the monitor does at start-up, under
the same name), and waits until the old day is gone. The job's schedule is put back after.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from scripts.stack import Stack
from services.common.dapr_adapters import DaprBlobStore, DaprJobs, DaprStateStore, Sidecar
from services.common.ports import NotFound
from services.monitor.domain.feedback import FeedbackRow
from services.monitor.domain.rows import rows_of
from services.monitor.feedback import feedback_table
from services.monitor.metrics import MonitorMetrics
from services.monitor.retention import job_name
from services.monitor.settings import Settings
from services.monitor.tables import InferenceTables
from tests.integration.conftest import poll, sidecar_settings
from tests.integration.test_metrics import sample, scraped
from tests.integration.test_training import unique
from tests.unit.monitor.events import logged

pytestmark = pytest.mark.integration

DEFAULTS = Settings()


async def seed(stack: Stack, model: str, old: datetime, recent: datetime) -> tuple[list[str], list[str], list[str]]:
    """Two parts of predictions made on the old day, one made on the recent one, and a feedback
    part received on the old day, written as the monitor writes them; the old and recent
    predictions' ids, and the old parts' blob keys."""
    sidecar = Sidecar(sidecar_settings(stack, "monitor"))
    try:
        state, blobs = DaprStateStore(sidecar, DEFAULTS.statestore), DaprBlobStore(sidecar, DEFAULTS.blobstore)
        tables = InferenceTables(state, blobs, DEFAULTS.index_segment_parts, DEFAULTS.page_max_parts, MonitorMetrics())
        calls = [logged(records=3, at=old, model=model), logged(records=2, at=old + timedelta(minutes=1), model=model)]
        keys = []
        for event in calls:
            for part in await tables.table.write(rows_of(event)[0]):
                keys.append(tables.table.part_key(model, part.day, part.entry.name))
        fresh = logged(records=2, at=recent, model=model)
        await tables.write(rows_of(fresh)[0])
        feedback = feedback_table(state, blobs, DEFAULTS.index_segment_parts)
        pid = calls[0].prediction_ids[0]
        for part in await feedback.write([FeedbackRow(prediction_id=pid, model=model, actual=0, received_at=old)]):
            keys.append(feedback.part_key(model, part.day, part.entry.name))
        return [i for e in calls for i in e.prediction_ids], fresh.prediction_ids, keys
    finally:
        await sidecar.close()


async def left(stack: Stack, model: str, day: str, keys: list[str]) -> dict[str, object]:
    """What the monitor's stores still hold of the model: the days of each index, whether the
    old day's first index segment is there, and the old parts' blobs still there."""
    sidecar = Sidecar(sidecar_settings(stack, "monitor"))
    try:
        state, blobs = DaprStateStore(sidecar, DEFAULTS.statestore), DaprBlobStore(sidecar, DEFAULTS.blobstore)
        tables = InferenceTables(state, blobs, DEFAULTS.index_segment_parts, DEFAULTS.page_max_parts, MonitorMetrics())
        feedback = feedback_table(state, blobs, DEFAULTS.index_segment_parts)
        segment = await tables.table.segments.get(tables.table.segment_key(model, day, 1))
        blobs_there = []
        for key in keys:
            try:
                await blobs.get(key)
                blobs_there.append(key)
            except NotFound:
                pass
        return {
            "predictions": [d for d, _ in await tables.table.days(model)],
            "feedback": [d for d, _ in await feedback.days(model)],
            "segment": segment is not None,
            "blobs": blobs_there,
        }
    finally:
        await sidecar.close()


async def reschedule(stack: Stack, schedule: str) -> None:
    sidecar = Sidecar(sidecar_settings(stack, "monitor"))
    try:
        await DaprJobs(sidecar, prefix=stack.topic_prefix).schedule(job_name(), schedule, {"days": 30})
    finally:
        await sidecar.close()


def done(found: dict[str, object], recent_day: str) -> dict[str, object] | None:
    return found if found["predictions"] == [recent_day] and found["feedback"] == [] else None


def test_the_retention_job_deletes_days_past_retention_and_keeps_recent_ones(stack, gateway):
    model = unique("retained")
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=DEFAULTS.retention_days + 5), now - timedelta(minutes=5)
    old_day, recent_day = old.strftime("%Y-%m-%d"), recent.strftime("%Y-%m-%d")
    old_ids, recent_ids, old_keys = asyncio.run(seed(stack, model, old, recent))
    assert len(old_keys) == 3
    page = gateway.get(f"/api/models/{model}/predictions", params={"limit": 100}).json()
    assert {r["prediction_id"] for r in page["predictions"]} == {*old_ids, *recent_ids}, "the seeded parts do not read"
    before = sample(scraped(stack, "monitor"), "daprml_monitor_retention_parts_deleted_total", table="predictions")

    asyncio.run(reschedule(stack, "@every 2s"))
    try:
        gone = poll(lambda: done(asyncio.run(left(stack, model, old_day, old_keys)), recent_day), 60)
    finally:
        asyncio.run(reschedule(stack, DEFAULTS.retention_schedule))

    assert gone, f"the old day was not deleted: {asyncio.run(left(stack, model, old_day, old_keys))}"
    assert gone["blobs"] == [] and not gone["segment"]  # the parts' blobs and the day's segment went too
    page = gateway.get(f"/api/models/{model}/predictions", params={"limit": 100}).json()
    assert sorted(r["prediction_id"] for r in page["predictions"]) == sorted(recent_ids)
    deleted = sample(scraped(stack, "monitor"), "daprml_monitor_retention_parts_deleted_total", table="predictions")
    assert deleted - before >= 2

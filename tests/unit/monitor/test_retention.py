"""Retention over in-memory stores: parts of days past DAPRML_RETENTION_DAYS are deleted from
both tables and forgotten by the index, recent ones kept; a crash between deleting a part and
forgetting it leaves a name readers pass over and the next run finishes; a run deletes at most
its bound, and a repeated run deletes nothing more; the settings refuse a retention shorter
than the feedback window; the job is scheduled at start-up and runs through the job route."""

import asyncio
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from services.common.contracts.monitoring import prediction_ids
from services.common.ports import NotFound, SidecarUnavailable
from services.monitor.app import create_app
from services.monitor.domain.feedback import FeedbackRow
from services.monitor.domain.pages import Cursor
from services.monitor.domain.retention import first_kept_day
from services.monitor.domain.rows import rows_of
from services.monitor.feedback import feedback_table
from services.monitor.metrics import MonitorMetrics
from services.monitor.ports import MonitorPorts
from services.monitor.retention import Retention, RetentionLimits
from services.monitor.settings import Settings
from services.monitor.tables import InferenceTables
from tests.fakes import FakeBlobStore, FakeJobs, FakeStateStore, fake_ports
from tests.unit.monitor.events import T0, logged

NOW = T0  # 2025-01-31 12:00 UTC
DAY = timedelta(days=1)


class StrictBlobs(FakeBlobStore):
    """Deleting a blob that is not there fails, as the local folder's and Azure's bindings do."""

    async def delete(self, key: str) -> None:
        if key not in self.blobs:
            raise NotFound(f"no blob {key!r}")
        await super().delete(key)


class CrashingState(FakeStateStore):
    """Fails the next `crashes` writes of a segment document (as a process dying there would)."""

    def __init__(self) -> None:
        super().__init__()
        self.crashes = 0

    async def save(self, key: str, value: bytes, etag: str | None = None) -> None:
        if self.crashes and key.count(":") == 3:  # <kind>:<model>:<day>:<n>
            self.crashes -= 1
            raise SidecarUnavailable("the state store went away")
        await super().save(key, value, etag)


class Stores:
    def __init__(self, max_parts: int = 100, days: int = 7) -> None:
        self.state, self.blobs, self.metrics = CrashingState(), StrictBlobs(), MonitorMetrics()
        self.tables = InferenceTables(self.state, self.blobs, 2, 200, self.metrics)  # 2 parts a segment
        self.feedback = feedback_table(self.state, self.blobs, 2, self.metrics)
        self.retention = Retention(
            [self.tables.table, self.feedback],
            FakeJobs(),
            RetentionLimits(days=days, schedule="@every 1h", max_parts=max_parts),
            self.metrics,
            clock=lambda: NOW,
        )

    def capture(self, days_ago: int, calls: int = 1, model: str = "iris") -> list[str]:
        """`calls` parts of 2 predictions each, made `days_ago` days before NOW; their ids."""
        ids = []
        for i in range(calls):
            event = logged(records=2, at=NOW - days_ago * DAY + timedelta(seconds=i), model=model)
            asyncio.run(self.tables.write(rows_of(event)[0]))
            ids += event.prediction_ids
        return ids

    def send_feedback(self, days_ago: int, model: str = "iris") -> None:
        pid = prediction_ids("0" * 32, 1)[0]
        row = FeedbackRow(prediction_id=pid, model=model, actual=1, received_at=NOW - days_ago * DAY)
        asyncio.run(self.feedback.write([row]))

    def run(self):
        return asyncio.run(self.retention.run())

    def days(self, table=None, model: str = "iris") -> list[str]:
        return [d for d, _ in asyncio.run((table or self.tables.table).days(model))]

    def read(self, model: str = "iris") -> list[str]:
        page = asyncio.run(self.tables.page(model, Cursor(), 1000))
        return [r.prediction_id for r in page.predictions]

    def counted(self, metric, *labels: str) -> float:
        return metric.labels(*labels)._value.get()


def test_the_first_kept_day_keeps_today_and_the_days_before_it():
    assert first_kept_day(NOW, 1) == "2025-01-31"
    assert first_kept_day(NOW, 7) == "2025-01-25"


def test_days_past_retention_are_deleted_from_both_tables_and_recent_ones_kept():
    s = Stores(days=7)
    s.capture(days_ago=30, calls=3)
    s.capture(days_ago=7, calls=1)  # 2025-01-24: one day past a 7-day retention
    kept = s.capture(days_ago=6, calls=2) + s.capture(days_ago=0, calls=1)
    s.capture(days_ago=40, model="wine")
    s.send_feedback(days_ago=9)
    s.send_feedback(days_ago=1)
    blobs_before = len(s.blobs.blobs)

    result = s.run()

    assert result is not None and result.done and result.first_kept_day == "2025-01-25"
    assert result.parts == {"predictions": 5, "feedback": 1} and result.rows == {"predictions": 10, "feedback": 1}
    assert s.days() == ["2025-01-25", "2025-01-31"] and s.days(model="wine") == []
    assert s.days(s.feedback) == ["2025-01-30"]
    assert len(s.blobs.blobs) == blobs_before - 6
    assert not any(k.count(":") == 3 and "2025-01-2" not in k and "2025-01-3" not in k for k in s.state.items)
    assert not [k for k in s.state.items if ":2025-01-24:" in k or ":2025-01-01:" in k or ":2024-12-22:" in k]
    assert sorted(s.read()) == sorted(kept)
    assert s.counted(s.metrics.retention_parts, "predictions") == 5
    assert s.counted(s.metrics.retention_rows, "feedback") == 1
    assert s.counted(s.metrics.retention_runs, "done") == 1


def test_a_crash_between_deleting_a_part_and_forgetting_it_leaves_a_name_readers_pass_over():
    s = Stores(days=7)
    old = s.capture(days_ago=10, calls=3)
    s.state.crashes = 1  # the first segment write after the blobs are deleted fails
    with pytest.raises(SidecarUnavailable):
        s.run()
    assert s.counted(s.metrics.retention_runs, "failed") == 1
    # The index still names the day's parts; their blobs (of the first segment) are gone.
    assert s.days() == ["2025-01-21"]
    assert set(s.read()) == set(old[4:])  # no failure: the two missing parts are passed over, counted
    assert s.counted(s.metrics.parts_missing, "predictions") == 2

    result = s.run()  # deleting what is gone already is no error

    assert result is not None and result.done and s.days() == [] and s.read() == []
    assert not [k for k in s.state.items if k.startswith("predictions:iris:")]
    assert not s.blobs.blobs


def test_a_run_deletes_at_most_its_bound_and_the_next_goes_on():
    s = Stores(max_parts=3, days=7)
    s.capture(days_ago=20, calls=2)
    s.capture(days_ago=10, calls=3)
    recent = s.capture(days_ago=1, calls=1)

    first = s.run()
    assert first is not None and not first.done and first.parts["predictions"] == 3
    assert s.days() == ["2025-01-21", "2025-01-30"]  # the oldest day went first
    assert s.counted(s.metrics.retention_runs, "bounded") == 1

    second = s.run()
    assert second is not None and second.done and second.parts["predictions"] == 2
    again = s.run()
    assert again is not None and again.done and again.parts == {"predictions": 0, "feedback": 0}
    assert s.days() == ["2025-01-30"] and s.read() == recent


def test_a_retention_shorter_than_the_feedback_window_is_refused_naming_both():
    with pytest.raises(ValidationError) as refused:
        Settings(retention_days=3, feedback_retention_days=7)
    assert "DAPRML_FEEDBACK_RETENTION_DAYS is 7" in str(refused.value)
    assert Settings(retention_days=7, feedback_retention_days=7).retention_days == 7
    with pytest.raises(ValidationError, match="seconds field"):
        Settings(retention_schedule="0 * * * *")


def test_the_job_is_scheduled_at_start_up_and_runs_through_the_job_route():
    ports = fake_ports(MonitorPorts)
    settings = Settings(app_api_token=SecretStr("t"), heartbeat_s=0, retention_schedule="@every 10m")
    tables = InferenceTables(ports.state, ports.blobs, 1000, 200, MonitorMetrics())
    event = logged(records=2, at=NOW)  # 2025: years past 30 days
    asyncio.run(tables.write(rows_of(event)[0]))
    with TestClient(create_app(settings, ports)) as client:
        assert ports.jobs.jobs["retention.tables"][0] == "@every 10m"
        assert client.get("/api/models/iris/predictions", headers={"dapr-api-token": "t"}).json()["predictions"]
        reply = client.post("/job/retention.tables", json={"days": 30}, headers={"dapr-api-token": "t"})
        assert reply.status_code == 200 and reply.json()["status"] == "done"
        page = client.get("/api/models/iris/predictions", headers={"dapr-api-token": "t"}).json()
        assert page["predictions"] == [] and not ports.blobs.blobs

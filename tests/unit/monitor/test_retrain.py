"""Retraining by policy over fake services: a check of a drifted champion with policy retrain
orders a retrain, and the background relay carries it out: the training data plus the captures
with an actual go to ingestion as one upload marked with its origin, training gets a job with the
champion's estimator and parameters, and the outcome is an action and a history entry. Done again,
it finds its own version and asks for the same job; too few actuals, it is skipped and says why;
a refusal is recorded, not retried."""

import asyncio
import io
import json
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from services.common.clients import IngestionClient, RegistryClient, TrainingClient
from services.common.ports import Reply
from services.monitor.domain.ledger import Truth
from services.monitor.domain.policy import MonitoringPolicy
from services.monitor.domain.reports import Trigger
from services.monitor.retrain import Retrainer, RetrainLimits
from tests.unit.monitor.drifting import LINEAGE, NOW, FakeRegistry, captured, draw, monitoring, predict

BASE_ROWS = 40
SCHEMA = {
    "task": "classification",
    "target": "y",
    "columns": [
        {"name": "x", "type": "number"},
        {"name": "colour", "type": "category"},
        {"name": "y", "type": "category"},
    ],
}


def manifest(version: int, rows: int, origin: dict | None = None) -> dict:
    return {
        "dataset": "iris-data",
        "version": version,
        "schema": SCHEMA,
        "schema_hash": "h1",
        "row_count": rows,
        "sha256": f"s{version}",
        "origin": origin,
    }


def parquet_of(records: list[dict]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return sink.getvalue()


class Services(FakeRegistry):
    """The registry (FakeRegistry), and ingestion and training as a retrain calls them: one
    dataset with one version; uploads kept by id (their parts' NDJSON rows); a commit makes
    version 2, or answers it `unchanged` when it holds the same rows; jobs asked for, kept."""

    def __init__(self) -> None:
        super().__init__()
        base = draw(BASE_ROWS, seed=9)
        self.base = [{**r, "y": y} for r, y in zip(base, predict(base), strict=True)]
        self.uploads: dict[str, dict] = {}
        self.versions = {1: manifest(1, BASE_ROWS)}
        self.rows: dict[int, list[dict]] = {1: self.base}
        self.jobs: list[dict] = []
        self.refuse_jobs = False

    async def call(self, app_id, method, http_verb="GET", body=b"", headers=None) -> Reply:
        if app_id == "ingestion":
            self.calls.append((app_id, method, http_verb))
            return self.ingestion(method, http_verb, body)
        if app_id == "training":
            self.calls.append((app_id, method, http_verb))
            if self.refuse_jobs:
                return Reply(422, b'{"detail": "estimator random_forest refuses n_estimators"}')
            self.jobs.append(json.loads(body))
            return Reply(201, json.dumps({"id": f"job-{len(self.jobs)}"}).encode())
        return await super().call(app_id, method, http_verb, body, headers)

    def ingestion(self, method: str, verb: str, body: bytes) -> Reply:
        data = "api/datasets/iris-data"
        if method == "internal/datasets/iris-data/uploads" and verb == "POST":
            upload = f"u{len(self.uploads) + 1}"
            self.uploads[upload] = {"origin": json.loads(body)["origin"], "parts": {}}
            return Reply(201, json.dumps({"upload_id": upload}).encode())
        if method.startswith(f"{data}/uploads/") and verb == "PUT":
            upload, number = method.split("/")[4], int(method.split("/")[6])
            self.uploads[upload]["parts"][number] = [json.loads(line) for line in body.splitlines()]
            return Reply(200, b"{}")
        if method.startswith(f"{data}/uploads/") and method.endswith("/commit"):
            upload = self.uploads[method.split("/")[4]]
            rows = [r for n in sorted(upload["parts"]) for r in upload["parts"][n]]
            latest = max(self.versions)
            unchanged = rows == self.rows[latest]
            if not unchanged:
                latest += 1
                self.rows[latest] = rows
                self.versions[latest] = manifest(latest, len(rows), upload["origin"])
            answer = {"dataset": "iris-data", "version": latest, "unchanged": unchanged, "row_count": len(rows)}
            return Reply(201, json.dumps(answer).encode())
        if method == f"{data}/versions/1/data?format=parquet":
            return Reply(200, parquet_of(self.base))
        if method.startswith(f"{data}/versions/"):
            version = int(method.rsplit("/", 1)[1])
            return Reply(200, json.dumps(self.versions[version]).encode())
        return Reply(404, b'{"detail": "no such method"}')


def retrainer_over(services: Services, truths: dict[str, Truth]):
    async def truths_of(model: str) -> dict[str, Truth]:
        return truths

    def build(bag, tables) -> Retrainer:
        return Retrainer(
            RegistryClient(bag.invoker, "registry"),
            IngestionClient(services, "ingestion"),
            TrainingClient(services, "training"),
            tables,
            truths_of,
            RetrainLimits(max_rows=1000, max_captured=1000, max_parts=100, part_bytes=2000),
        )

    return build


def drifted_with_actuals(labeled: int, policy: MonitoringPolicy | None = None):
    """A monitored champion with 300 shifted captures, `labeled` of them with an actual; checked."""
    services = Services()
    truths: dict[str, Truth] = {}
    service, ports, tables = monitoring(services, retrainer=retrainer_over(services, truths))
    policy = policy or MonitoringPolicy(on_drift="retrain", retrain_min_rows=50)
    asyncio.run(service.set_policy("iris", policy, "ops", ""))
    rows = captured(draw(300, seed=2, x_shift=4.0))
    asyncio.run(tables.write(rows))
    for row in rows[:labeled]:
        truths[row.prediction_id] = Truth("yes", NOW - timedelta(minutes=1))
    result = asyncio.run(service.check("iris", Trigger.API, "ops lead"))
    return services, service, rows, result


def test_a_drifted_champion_is_retrained_on_its_data_plus_the_labeled_captures():
    services, service, rows, result = drifted_with_actuals(labeled=60)
    assert [a.action for a in result.actions] == ["notify", "retrain"]
    assert services.jobs == []  # the check does not wait for it: the background relay carries it out
    asyncio.run(service.flush_all())

    (upload,) = services.uploads.values()
    origin = upload["origin"]
    assert (origin["model"], origin["base_version"], origin["feedback_rows"]) == ("iris", 1, 60)
    assert origin["retrain_id"] == f"{result.check_id}-retrain"
    assert len(upload["parts"]) > 1  # 2,000-byte parts
    sent = services.rows[2]
    assert sent[:BASE_ROWS] == services.base
    assert sent[BASE_ROWS:] == [{**r.inputs, "y": "yes"} for r in rows[:60]]
    (job,) = services.jobs
    assert job == {
        "dataset": "iris-data",
        "version": 2,
        "estimator": LINEAGE["estimator"],
        "params": LINEAGE["params"],
        "model": "iris",
    }
    view = asyncio.run(service.view("iris"))
    assert view.actions[0].action == "retrained" and "iris-data v2" in view.actions[0].reason
    asyncio.run(service.flush_all())  # the outcome's history entry, owed in the same write
    note = services.notes[-1]
    assert (note.action, note.actor) == ("monitoring.retrained", "ops lead")
    assert (note.details["dataset_version"], note.details["feedback_rows"], note.details["job_id"]) == (2, 60, "job-1")
    assert asyncio.run(service.view("iris")).owed == 0


def test_a_retrain_done_again_finds_its_own_version_and_asks_for_the_same_job():
    services, service, _, result = drifted_with_actuals(labeled=60)
    record = asyncio.run(service.records.get("monitoring:iris"))
    (order,) = [o.retrain for o in record.outbox if o.retrain is not None]
    retrainer = service.relay.retrainer
    first, again = asyncio.run(retrainer.run(order)), asyncio.run(retrainer.run(order))
    assert first.action == again.action == "retrained"
    assert sorted(services.versions) == [1, 2]  # one dataset version
    assert [j["version"] for j in services.jobs] == [2, 2]  # the same request: training answers the same job


def test_too_few_actuals_skip_the_retrain_and_say_how_many_there_were():
    services, service, _, _ = drifted_with_actuals(labeled=10)
    asyncio.run(service.flush_all())
    assert services.uploads == {} and services.jobs == []
    action = asyncio.run(service.view("iris")).actions[0]
    assert action.action == "retrain-skipped" and "10 captured predictions have an actual" in action.reason


def test_a_refused_job_is_recorded_and_not_tried_again():
    services, service, _, _ = drifted_with_actuals(labeled=60)
    services.refuse_jobs = True
    asyncio.run(service.flush_all())
    asyncio.run(service.flush_all())
    action = asyncio.run(service.view("iris")).actions[0]
    assert action.action == "retrain-failed" and "refuses n_estimators" in action.reason
    assert services.notes[-1].action == "monitoring.retrain-failed"
    assert [c for c in services.calls if c[0] == "training"] == [("training", "api/training/jobs", "POST")]


def test_a_second_drift_within_the_cooldown_orders_no_second_retrain():
    services, service, rows, _ = drifted_with_actuals(labeled=60)
    again = asyncio.run(service.check("iris", Trigger.API, "ops"))
    assert [a.action for a in again.actions] == ["none", "retrain-skipped"]  # the drift was told already
    asyncio.run(service.flush_all())
    assert len(services.uploads) == 1


def test_with_ingestion_away_the_order_stays_owed_and_is_carried_out_once_it_is_back():
    services, service, _, _ = drifted_with_actuals(labeled=60)
    answer = services.ingestion
    services.ingestion = lambda *a: Reply(500, b'{"errorCode": "ERR_DIRECT_INVOKE", "message": "down"}')
    asyncio.run(service.flush_all())
    view = asyncio.run(service.view("iris"))
    assert view.owed == 1 and [a.action for a in view.actions] == ["notify", "retrain"]  # the notes went
    services.ingestion = answer
    asyncio.run(service.flush_all())
    assert [j["version"] for j in services.jobs] == [2]

"""Service metrics on the real stack, read on each app's own metrics port (loopback): one dataset
commit through the gateway moves ingestion's row and commit counters by exactly what it did
and publishes one event; the job it starts moves training's completed jobs by one; the
notifier serves its own; and no spelling of /metrics reaches anything through the gateway."""

import http.client
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts import credentials
from scripts.stack import Stack
from tests.integration.conftest import poll
from tests.integration.test_training import finished_job, unique

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}
ROWS = 120


def scraped(stack: Stack, service: str) -> str:
    """The app's /metrics, on its metrics port (loopback), in Prometheus' text format."""
    port = stack.app(service).metrics_port
    assert port, f"the run file gives {service} no metrics port"
    reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain"), reply
    return reply.text


def sample(text: str, name: str, **labels: str) -> float:
    """A sample's value in a scrape (0 when absent), its labels matched exactly."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


def rows_csv() -> bytes:
    """Distinct rows (no duplicate to drop), a class the numbers decide."""
    rng = np.random.default_rng(20)
    size, weight = rng.normal(10, 3, ROWS).round(4), rng.normal(50, 10, ROWS).round(4)
    target = np.where(size + rng.normal(0, 1, ROWS) > 10, "big", "small")
    return pd.DataFrame({"size": size, "weight": weight, "target": target}).to_csv(index=False).encode()


def no_job_running(gateway: httpx.Client) -> bool:
    """Jobs of earlier tests may still end while this one counts: it waits for them first."""
    for status in ("pending", "running"):
        reply = gateway.get("/api/training/jobs", params={"status": status, "limit": 1})
        if reply.status_code != 200 or reply.json()["total"]:
            return False
    return True


def test_a_commit_and_its_job_move_the_counters_by_exactly_what_they_did(stack, gateway):
    assert poll(lambda: no_job_running(gateway), 120), "jobs of earlier tests never ended"
    ingestion, training = scraped(stack, "ingestion"), scraped(stack, "training")
    name, data = unique("metrics"), rows_csv()

    reply = gateway.post(f"/api/datasets/{name}/versions?target=target&task=classification", content=data, headers=CSV)
    assert reply.status_code == 201, reply.text
    (job,) = finished_job(gateway, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job

    after = scraped(stack, "ingestion")

    def rose(before: str, now: str, name: str, **labels: str) -> float:
        return sample(now, name, **labels) - sample(before, name, **labels)

    assert rose(ingestion, after, "daprml_ingestion_rows_total", outcome="accepted") == ROWS
    assert rose(ingestion, after, "daprml_ingestion_rows_total", outcome="rejected") == 0
    assert rose(ingestion, after, "daprml_ingestion_commits_total", outcome="committed") == 1
    assert rose(ingestion, after, "daprml_ingestion_committed_rows_total") == ROWS
    assert rose(ingestion, after, "daprml_ingestion_received_bytes_total") == len(data)
    assert rose(ingestion, after, "daprml_events_published_total", topic="dataset-versions") == 1
    assert name not in after

    # The job's end is counted once its workflow returns, a moment after the API says COMPLETED.
    def completed() -> str | None:
        now = scraped(stack, "training")
        return now if rose(training, now, "daprml_training_jobs_total", status="COMPLETED") >= 1 else None

    now = poll(completed, 20)
    assert now is not None, "training's jobs_total{status=COMPLETED} did not rise"
    assert rose(training, now, "daprml_training_jobs_total", status="COMPLETED") == 1
    assert rose(training, now, "daprml_training_jobs_total", status="FAILED") == 0
    assert rose(training, now, "daprml_training_fit_duration_seconds_count", estimator=job["estimator"]) == 1
    for step in ("load", "fit", "evaluate", "register", "promote"):
        assert rose(training, now, "daprml_training_step_duration_seconds_count", step=step) >= 1, step
    assert rose(training, now, "daprml_events_delivered_total", topic="dataset-versions", outcome="success") >= 1


def test_the_notifier_serves_its_metrics_on_its_own_port(stack):
    text = scraped(stack, "notifier")
    assert sample(text, "daprml_notifier_up") == 1
    assert "daprml_notifier_events_total" in text or "# TYPE daprml_notifier_events counter" in text


PATHS = (
    "/metrics",
    "/metrics/",
    "/METRICS",
    "//metrics",
    "/api/../metrics",
    "/api/metrics/../../metrics",
    "/api/%2e%2e/metrics",
    "/%2e%2e/metrics",
    "/v2/../metrics",
    "/api/models/x/../../../metrics",
)


@pytest.mark.parametrize("key", [True, False], ids=["with-the-admin-key", "without-a-key"])
def test_no_spelling_of_metrics_reaches_anything_through_the_gateway(stack, key):
    """Sent as written (http.client does not resolve dot segments, as httpx would)."""
    where = urlsplit(stack.gateway_url)
    headers = credentials.auth_headers(stack.admin_key if key else None)
    for path in PATHS:
        connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers)
            reply = connection.getresponse()
            body = reply.read().decode(errors="replace")
        finally:
            connection.close()
        assert reply.status in (401, 404), (path, reply.status, body[:200])
        assert "# TYPE" not in body and "daprml_http_requests" not in body, path

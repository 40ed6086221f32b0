"""The monitor killed with -9 while captures flow loses none: a steady stream of predictions
through the gateway, the monitor app killed a few seconds in (its supervisor starts it again),
and afterwards every prediction id the gateway answered is in the model's inference table,
once. What the dead monitor held was never acknowledged, so the broker delivers it again; what
it wrote but had not acknowledged comes again too, and the copies are dropped by prediction id
(counted by the monitor as duplicates dropped on read)."""

import threading
import time
from collections import Counter

import httpx
import pytest

from scripts.stack import Stack
from tests.integration.conftest import captured_predictions, poll
from tests.integration.load import FixedRate, kill_listener
from tests.integration.test_metrics import sample, scraped
from tests.integration.test_monitor import RECORDS
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration

PER_SECOND, DURATION_S = 20, 25  # 500 calls; the kill comes a few seconds in


class Answered:
    """The prediction ids of each answered call, kept as the stream's threads receive them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[list[str]] = []

    def predict(self, client: httpx.Client, name: str) -> httpx.Response:
        reply = client.post(f"/api/models/{name}/predict", json={"records": RECORDS})
        if reply.status_code == 200:
            with self._lock:
                self.calls.append(reply.json()["prediction_ids"])
        return reply

    def ids(self) -> list[str]:
        with self._lock:
            return [i for call in self.calls for i in call]


def served_through_its_sidecar(stack: Stack, service: str) -> bool:
    """The app answers and its sidecar passes calls to it again (its app health check passed)."""
    app = stack.app(service)
    url = f"http://127.0.0.1:{app.http_port}/v1.0/invoke/{app.app_id}/method/healthz"
    try:
        return httpx.get(url, headers=stack.sidecar_headers(), timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def dropped_on_read(stack: Stack) -> float:
    return sample(scraped(stack, "monitor"), "daprml_monitor_duplicates_dropped_total", stage="read")


def test_the_monitor_killed_mid_capture_loses_no_prediction_and_keeps_each_once(stack, gateway):
    name = unique("capture-kill")
    commit(gateway, name, iris_csv())
    (job,) = finished_job(gateway, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job
    answered = Answered()
    assert poll(lambda: answered.predict(gateway, name).status_code == 200, 30), "the model was never served"
    monitor = stack.app("monitor")
    load = FixedRate(lambda c: answered.predict(c, name), stack.gateway, per_second=PER_SECOND, duration_s=DURATION_S)
    started = time.monotonic()
    with load:
        # Captures are flowing once the monitor has written some of the stream's rows.
        flowing = poll(lambda: (n := len(captured_predictions(gateway, name))) > PER_SECOND and n, DURATION_S / 2)
        assert flowing, "the stream's predictions were never captured"
        killed_after_s, answered_then = time.monotonic() - started, len(answered.ids())
        killed, back_s = kill_listener(monitor.app_port, timeout_s=60)
        listening_at = time.monotonic()
        assert poll(lambda: served_through_its_sidecar(stack, "monitor"), 60), "the monitor never came back"
        served_s = back_s + time.monotonic() - listening_at
    report = load.report("predictions through the gateway")
    # The monitor is off the request path: its death fails no prediction.
    assert load.failures() == [], report
    ids = answered.ids()
    assert len(ids) == len(set(ids)) == (len(load.answers) + 1) * len(RECORDS)

    def all_captured() -> list[dict] | None:
        rows = captured_predictions(gateway, name)
        return rows if {r["prediction_id"] for r in rows} >= set(ids) else None

    # Redeliveries back off (the resiliency policy's `deliver`: about 2 minutes before a dead letter).
    ended = time.monotonic()
    poll(all_captured, 180)
    waited_s = time.monotonic() - ended
    before = dropped_on_read(stack)
    rows = captured_predictions(gateway, name)
    copies = dropped_on_read(stack) - before
    seen = Counter(r["prediction_id"] for r in rows)
    missing = set(ids) - set(seen)
    print(
        f"\nmonitor app {killed} killed {killed_after_s:.1f}s into the stream ({answered_then} predictions "
        f"answered, {flowing} captured); listening again in {back_s:.1f}s, "
        f"served through its sidecar in {served_s:.1f}s; {report}; {len(ids)} prediction ids answered, "
        f"{len(seen)} captured ({len(missing)} missing) {waited_s:.1f}s after the stream ended; "
        f"{copies:.0f} copies in the table dropped on read"
    )
    assert not missing, f"{len(missing)} of {len(ids)} answered predictions were never captured"
    assert [i for i, n in seen.items() if n > 1] == [], "a prediction was read back more than once"
    assert set(seen) == set(ids), "the table holds predictions nobody was answered"

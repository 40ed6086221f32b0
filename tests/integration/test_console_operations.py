"""The console's Operations page in headless Chromium, on the session stack with Prometheus (and
Jaeger, when it runs) behind the gateway: predictions are made while the page is read, and the
charts, the tables and the replicas must show them. Screenshot: docs/console-operations.png,
when missing or DAPRML_UPDATE_SCREENSHOTS=1.

The browser, sign-in and page helpers are test_console.py's.
"""

import json
import os
import shutil
import threading
import time
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from sklearn.datasets import load_iris

from scripts.infra import observability
from scripts.proc import ROOT, port_open
from tests.integration import test_cli, test_console
from tests.integration.conftest import poll
from tests.integration.test_console import SETOSA, commit, jobs_done, severe_logs, sign_in, unique, wait_for

pytestmark = pytest.mark.integration
browser, shots = test_console.browser, test_console.shots  # the same fixtures: Chromium and a folder for screenshots
daprml = test_cli.daprml  # the installed CLI in a subprocess, pointed at the stack
PROMETHEUS_PORT = 9090
ROUTE = "operations?window=15m"  # 15 s steps: data shows within a minute


@pytest.fixture(scope="module")
def observed(stack) -> None:
    """Prometheus must answer where infra starts it (helper B's part of issue 20)."""
    if not observability.wiring().metrics:  # off, or not installed (no root): setup said so
        pytest.skip(f"no Prometheus here ({observability.setting()}; make setup installs it as root)")
    assert port_open(PROMETHEUS_PORT), "Prometheus should run (infra starts it) but nothing answers on 127.0.0.1:9090"


@pytest.fixture(scope="module")
def model(stack, observed) -> str:
    """iris, one champion."""
    name = unique("ops")
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(load_iris().target_names)))
    with stack.gateway() as gateway:
        commit(gateway, name, frame)
        jobs_done(gateway, name, 1)
    return name


class Traffic:
    """Predictions through the gateway in a thread, a few a second, until stopped (bounded)."""

    def __init__(self, stack, model: str, per_s: float = 4, limit_s: float = 300):
        self.stack, self.model, self.per_s, self.limit_s = stack, model, per_s, limit_s
        self.sent = self.failed = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        body = {"records": [{k: float(v) for k, v in SETOSA.items()}]}
        deadline = time.monotonic() + self.limit_s
        with self.stack.gateway() as gateway:
            while not self.stopped.is_set() and time.monotonic() < deadline:
                reply = gateway.post(f"/api/models/{self.model}/predict", json=body)
                self.sent += 1
                self.failed += reply.status_code != 200
                self.stopped.wait(1 / self.per_s)

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(10)


PREDICT = "POST /api/models/{name}/predict"  # the gateway's route, as its spans name it


def operations(stack, path: str, **params: str) -> dict:
    with stack.gateway() as gateway:
        window = {"window": "15m"} if path != "replicas" else {}
        reply = gateway.get(f"/api/operations/{path}", params=window | params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def charted(driver, canvas_id: str) -> list[tuple[str, float]]:
    """Each dataset of the chart on that canvas and its largest value (datasets without one left out)."""
    return driver.execute_script(
        "const c = Chart.getChart(document.getElementById(arguments[0]));"
        "if (!c) return null;"
        "return c.data.datasets.map((d) => [d.label, Math.max(...d.data.filter((v) => v !== null))])"
        "  .filter(([, v]) => Number.isFinite(v));",
        canvas_id,
    )


def test_the_operations_page_charts_the_traffic_lists_traces_and_replicas(stack, browser, shots, model):
    url = stack.gateway_url
    with Traffic(stack, model) as traffic:
        services = operations(stack, "services")
        assert services["available"] is True, f"the gateway does not read Prometheus: {services['reason']}"

        def rated() -> dict | None:
            answer = operations(stack, "models")
            ours = [m for m in answer["models"] if m["model"] == model and (m["current"]["rate"] or 0) > 0]
            return answer if ours else None

        assert poll(rated, 120), (
            f"no prediction rate for {model} in Prometheus after 120 s: {operations(stack, 'models')}"
        )

        sign_in(browser, url, stack.admin_key, route=ROUTE)
        rate_cell = f'#ops-models-table tr[data-model="{model}"] td[data-signal="rate"]'
        assert float(wait_for(browser, rate_cell, timeout_s=30).get_attribute("data-value")) > 0
        inference = wait_for(browser, '#ops-services-table tr[data-service="inference"] td[data-signal="rate"]')
        assert float(inference.get_attribute("data-value")) > 0
        # Read in one script, polled: the page redraws the table every 15 s, and a latency can be
        # null for a refresh (seen once in four runs) when the last scrape is not in yet.
        p99_cell = '#ops-services-table tr[data-service="gateway"] td[data-signal="p99_s"]'
        read = (
            "const c = document.querySelector(arguments[0]);"
            "return c && c.dataset.value ? [c.dataset.value, c.textContent] : null;"
        )
        gateway_p99 = poll(lambda: browser.execute_script(read, p99_cell), 35)
        assert gateway_p99, "the gateway's p99 stayed empty for 35 s"
        assert float(gateway_p99[0]) > 0 and gateway_p99[1].endswith("ms")

        # A canvas per chart, each drawn with data: services and models, rate, latency, errors.
        for group in ("services", "models"):
            for panel in ("rate", "latency", "errors"):
                assert browser.find_element(By.ID, f"ops-{group}-{panel}").is_displayed()
                assert poll(lambda g=group, p=panel: charted(browser, f"ops-{g}-{p}"), 5), f"{group} {panel} not drawn"
        models_rate = dict(charted(browser, "ops-models-rate"))
        assert models_rate[f"{model} v1"] > 0
        assert dict(charted(browser, "ops-services-rate"))["inference"] > 0
        latency = dict(charted(browser, "ops-services-latency"))  # p99 under the service's name, p50 beside it
        assert latency["gateway"] >= latency["gateway p50"] > 0

        shown = browser.find_element(By.ID, "view").text
        assert "[object " not in shown and "undefined" not in shown and "NaN" not in shown, shown

        # Replicas: every service answers through Dapr, each Python one has an instance up.
        rows = browser.find_elements(By.CSS_SELECTOR, "#ops-replicas-table tr[data-replicas]")
        assert {r.get_attribute("data-replicas") for r in rows} >= {"gateway", "inference", "registry"}
        assert all(r.get_attribute("data-reachable") == "true" for r in rows)
        up = browser.find_elements(
            By.CSS_SELECTOR, '#ops-replicas-table tr[data-replicas="inference"] [data-instance][data-up="true"]'
        )
        assert up, "no inference replica listed as up"
        scraped = browser.find_elements(
            By.CSS_SELECTOR, '#ops-replicas-table tr[data-replicas="inference"] [data-target][data-up="true"]'
        )
        assert {s.get_attribute("data-target") for s in scraped} == {"app", "daprd"}

        # Traces, when the trace backend runs: the slowest requests, each opening its waterfall here.
        traces = operations(stack, "traces")
        if traces["available"]:
            link = wait_for(browser, "#ops-traces-table [data-trace-link]", timeout_s=30)
            trace_id = link.get_attribute("data-trace-link")
            assert link.get_attribute("href").endswith(f"#/operations/traces/{trace_id}")
        else:
            assert wait_for(browser, '[data-unavailable="traces"]').text == traces["reason"]

        assert browser.find_element(By.ID, "ops-live").get_attribute("data-polling") == "yes"
        picture = ROOT / "docs" / "console-operations.png"
        update = not picture.exists() or os.environ.get("DAPRML_UPDATE_SCREENSHOTS") == "1"
        if update:  # the docs' picture: after a refresh, with more of the traffic drawn
            updated = browser.find_element(By.ID, "ops-live").text
            assert poll(lambda: browser.find_element(By.ID, "ops-live").text != updated, 20)
        browser.save_screenshot(str(shots / "operations.png"))
        browser.execute_script("document.getElementById('ops-replicas').scrollIntoView()")
        browser.save_screenshot(str(shots / "operations-traces-replicas.png"))
        if update:
            picture.parent.mkdir(exist_ok=True)
            shutil.copyfile(shots / "operations.png", picture)
        if traces["available"]:  # an operation in the table filters the list to it
            first = wait_for(browser, "#ops-traces-table [data-operation]")
            picked = first.get_attribute("data-operation")
            first.click()
            assert wait_for(browser, "strong[data-operation-filter]").text == picked
            wait_for(browser, "#ops-traces-table [data-operation]")  # the new view's table, drawn after it
            listed = browser.find_elements(By.CSS_SELECTOR, "#ops-traces-table [data-operation]")
            assert {a.get_attribute("data-operation") for a in listed} == {picked}
        assert traffic.failed == 0, f"{traffic.failed} of {traffic.sent} predictions failed"
    assert severe_logs(browser) == []


def test_a_slow_trace_opens_as_a_waterfall_of_the_gateway_and_the_service_it_called(
    stack, browser, shots, daprml, model
):
    url = stack.gateway_url
    app_ids = {s["service"]: s["app_id"] for s in operations(stack, "replicas")["services"]}
    gateway_id, inference_id = app_ids["gateway"], app_ids["inference"]
    with Traffic(stack, model):
        if not observability.wiring().traces:
            pytest.skip(f"no traces here ({observability.setting()}; Jaeger not built)")
        answer = operations(stack, "traces")
        assert answer["available"], f"the trace backend should answer: {answer['reason']}"

        def predict_traced() -> list[dict] | None:
            # Predictions that reached inference, asked for by route: on the session stack other
            # tests' requests (uploads, status checks, events) reach inference too and are all
            # slower than a prediction, so a search by service alone can be full of them.
            found = operations(stack, "traces", service="inference", operation=PREDICT)["traces"]
            return [t for t in found if t["operation"] == PREDICT and inference_id in t["services"]] or None

        assert poll(predict_traced, 60), (
            f"no prediction among the slowest: {operations(stack, 'traces', service='inference', operation=PREDICT)}"
        )
    # The page, asked for the slowest predictions that reached inference (the filter a person
    # gets by clicking a prediction's operation in the table), lists the prediction traces found.
    sign_in(browser, url, stack.admin_key, route=f"operations?window=15m&service=inference&operation={quote(PREDICT)}")
    wait_for(browser, f'[data-operation-filter="{PREDICT}"]')
    row = wait_for(browser, "#ops-traces-table tr[data-trace]", timeout_s=30)
    trace_id = row.get_attribute("data-trace")
    operations_listed = {a.text for a in browser.find_elements(By.CSS_SELECTOR, "#ops-traces-table [data-operation]")}
    assert operations_listed == {PREDICT}, operations_listed

    def complete() -> bool:
        # Each process exports its spans in batches, seconds apart: the search finds a trace as
        # soon as the gateway's first span is in, before its sidecar's or inference's.
        with stack.gateway() as gateway:
            found = gateway.get(f"/api/operations/traces/{trace_id}").json()
        services = [s["service"] for s in found["spans"]]
        return services.count(gateway_id) >= 2 and services.count(inference_id) >= 2

    assert poll(complete, 30), f"trace {trace_id} never had spans of both apps and both sidecars"
    # Found again: the page refreshes its tables while shown.
    link = wait_for(browser, f'#ops-traces-table [data-trace-link="{trace_id}"]')
    link.click()
    wait_for(browser, "#trace-waterfall .wf-row[data-span]", timeout_s=15)
    assert browser.execute_script("return location.hash") == f"#/operations/traces/{trace_id}"
    spans = browser.find_elements(By.CSS_SELECTOR, "#trace-waterfall .wf-row[data-span]")
    services = [s.get_attribute("data-service") for s in spans]
    # The gateway app's span and its sidecar's call (both under its app id), the inference
    # sidecar's and app's (under inference's): one trace through both sidecars.
    assert services.count(gateway_id) >= 2 and services.count(inference_id) >= 2, services
    assert spans[0].get_attribute("data-service") == gateway_id and spans[0].get_attribute("data-depth") == "0"
    assert max(int(s.get_attribute("data-depth")) for s in spans) >= 2
    starts = [float(b.get_attribute("data-start-ms")) for b in browser.find_elements(By.CSS_SELECTOR, ".wf-bar")]
    assert starts == sorted(starts) and starts[0] == 0
    widths = [b.size["width"] for b in browser.find_elements(By.CSS_SELECTOR, ".wf-bar")]
    assert widths[0] == max(widths) and widths[0] > 100, widths  # the root spans the trace
    assert {e.get_attribute("data-legend") for e in browser.find_elements(By.CSS_SELECTOR, "[data-legend]")} >= {
        gateway_id,
        inference_id,
    }
    with stack.gateway() as gateway:
        listed = gateway.get(f"/api/operations/traces/{trace_id}").json()
    # As many spans as the page drew (more if a late export arrived since), no query string in any.
    assert len(listed["spans"]) >= len(spans) and "?" not in json.dumps(listed["spans"])

    spans[0].click()  # a row opens its attributes
    facts = wait_for(browser, "#trace-waterfall .wf-detail .wf-facts")
    assert "http.method" in facts.text and "POST" in facts.text
    shown = browser.find_element(By.ID, "view").text
    assert "[object " not in shown and "undefined" not in shown and "NaN" not in shown, shown
    browser.save_screenshot(str(shots / "operations-trace.png"))
    picture = ROOT / "docs" / "console-operations-trace.png"
    if not picture.exists() or os.environ.get("DAPRML_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shots / "operations-trace.png", picture)
    assert severe_logs(browser) == []
    # The same trace in the terminal: a line per span, the gateway's first.
    done = daprml("trace", trace_id)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"trace {trace_id}: ") and len(lines) >= 2 + len(spans), done.stdout
    assert gateway_id in lines[2] and "█" in lines[2]


def test_daprml_top_shows_the_same_numbers_in_the_terminal(stack, daprml, model):
    with Traffic(stack, model):

        def ours() -> dict | None:
            done = daprml("top", "--json")
            assert done.returncode == 0, done.stderr
            found = [m for m in json.loads(done.stdout)["models"]["models"] if m["model"] == model]
            return found[0] if found and (found[0]["current"]["rate"] or 0) > 0 else None

        assert poll(ours, 120), "daprml top --json never showed the model's rate"
        done = daprml("top", "--once")
    assert done.returncode == 0, done.stderr
    rows = {
        line.split("│")[0].strip(): [c.strip() for c in line.split("│")]
        for line in done.stdout.splitlines()
        if "│" in line
    }
    assert rows[model][2].endswith("/s") and float(rows[model][2][:-2]) > 0, done.stdout
    assert "inference" in rows, done.stdout
    dapr, replicas, sidecars = rows["inference"][5:]
    assert dapr == "ok", done.stdout
    for up, listed in (replicas.split("/"), sidecars.split("/")):  # every replica and its sidecar up
        assert up == listed and int(up) >= 1, done.stdout


def calls_to_operations(driver) -> int:
    return driver.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/operations/')).length;"
    )


def test_the_page_refreshes_while_shown_and_stops_when_left(stack, browser, observed):
    url = stack.gateway_url
    sign_in(browser, url, stack.admin_key, route=ROUTE)
    wait_for(browser, "#ops-live[data-polling]")
    first = calls_to_operations(browser)
    assert first == 4  # services, models, traces, replicas
    assert poll(lambda: calls_to_operations(browser) >= 8, 20), "the page did not refresh within 20 s"
    browser.execute_script("location.hash = '#/models'")
    # Polled in one script: an element found while the view shows "Loading…" is replaced under it.
    assert poll(
        lambda: browser.execute_script(
            "return !document.querySelector('#ops-live') && document.querySelector('#view h1') !== null"
        ),
        15,
    )
    left = calls_to_operations(browser)
    time.sleep(17)  # longer than the refresh interval
    assert calls_to_operations(browser) == left, "the operations page kept polling after it was left"

"""The model page's Monitoring card in headless Chromium, on the session stack: an iris model is
"not monitored yet"; predictions with their actual values sent back draw its live accuracy per
day against the champion's holdout accuracy; a policy is shown; "Run check now" after inputs
with one feature shifted by five standard deviations draws that feature's PSI as drifted, and
only it; a reader's key is told it may not run a check. Screenshot: docs/console-monitoring.png,
when missing or DAPRML_UPDATE_SCREENSHOTS=1.

The browser, sign-in and page helpers are test_console.py's; the records test_monitor_drift.py's.
"""

import os
import shutil
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from selenium.webdriver.common.by import By
from sklearn.datasets import load_iris

from scripts.proc import ROOT
from tests.integration import test_console
from tests.integration.conftest import poll
from tests.integration.test_console import commit, jobs_done, severe_logs, sign_in, unique, wait_for
from tests.integration.test_monitor_drift import ROWS, SHIFTED, captured_count, iris_records

pytestmark = pytest.mark.integration
browser, shots = test_console.browser, test_console.shots  # the same fixtures: Chromium and a folder for screenshots
DRIFTED = "#c2372f"  # the colour of a drifted feature's bar (views/monitoring.js)
POLICY = {"window_rows": ROWS, "window_hours": 1, "schedule": "@every 6h", "on_drift": "notify"}


def iris_with_labels(seed: int) -> tuple[list[dict], list[str]]:
    """ROWS of iris' own rows drawn with replacement (seeded), and each one's true class."""
    iris = load_iris(as_frame=True)
    drawn = iris.frame.sample(ROWS, replace=True, random_state=np.random.RandomState(seed))
    labels = [str(iris.target_names[t]) for t in drawn["target"]]
    records = [{k: float(v) for k, v in row.items()} for row in drawn.drop(columns="target").to_dict("records")]
    return records, labels


def predict(gateway: httpx.Client, name: str, records: list[dict]) -> list[str]:
    reply = gateway.post(f"/api/models/{name}/predict", json={"records": records})
    assert reply.status_code == 200, reply.text
    return reply.json()["prediction_ids"]


@pytest.fixture(scope="module")
def model(stack) -> Iterator[str]:
    """iris, its champion v1 (whose card has reference distributions); its monitoring policy,
    and so its scheduled job, removed at the end."""
    name = unique("watched")
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(load_iris().target_names)))
    with stack.gateway() as gateway:
        commit(gateway, name, frame)
        jobs_done(gateway, name, 1, timeout_s=180)
    yield name
    with stack.gateway() as gateway:
        gateway.delete(f"/api/models/{name}/monitoring")


def chart(driver, canvas_id: str) -> dict | None:
    """The chart on that canvas: its labels, and each dataset's label, values and bar colours."""
    return driver.execute_script(
        "const c = Chart.getChart(document.getElementById(arguments[0]));"
        "return c ? {labels: c.data.labels, datasets: c.data.datasets.map((d) =>"
        "  ({label: d.label, data: d.data,"
        "    colors: Array.isArray(d.backgroundColor) ? d.backgroundColor : null}))} : null;",
        canvas_id,
    )


def test_the_monitoring_card_charts_live_accuracy_and_the_drift_a_check_finds(stack, gateway, browser, shots, model):
    url = stack.gateway_url
    api = f"/api/models/{model}"
    holdout = gateway.get(api).json()["versions"][0]["metrics"]["accuracy"]

    # Nothing yet: a line saying what to do, no error.
    sign_in(browser, url, stack.admin_key, route=f"models/{model}")
    assert "Not monitored yet" in wait_for(browser, "#monitoring-empty").text
    assert browser.find_element(By.ID, "banner").text == ""

    # Predictions drawn from the training data, their actual classes sent back: live accuracy.
    records, labels = iris_with_labels(seed=31)
    ids = predict(gateway, model, records)
    assert poll(lambda: captured_count(gateway, model) >= ROWS, 60), "the predictions were never captured"
    feedback = [{"prediction_id": i, "actual": a} for i, a in zip(ids, labels, strict=True)]
    sent = gateway.post(f"{api}/feedback", json=feedback)
    assert sent.status_code == 200 and sent.json()["accepted"] == ROWS, sent.text

    def joined() -> dict | None:
        versions = gateway.get(f"{api}/monitoring/live").json()["versions"]
        return versions[0] if versions and versions[0]["window"]["count"] >= ROWS else None

    live = poll(joined, 60)
    assert live, gateway.get(f"{api}/monitoring/live").text
    accuracy = live["window"]["metrics"]["accuracy"]
    assert accuracy["count"] == ROWS and accuracy["value"] > 0.8, accuracy
    assert gateway.put(f"{api}/monitoring", params={"reason": "console test"}, json=POLICY).status_code == 200

    # Then inputs with one feature shifted, captured, and a check from the page.
    predict(gateway, model, iris_records(seed=32, shift_sd=5))
    assert poll(lambda: captured_count(gateway, model) >= 2 * ROWS, 60), "the shifted predictions were never captured"
    sign_in(browser, url, stack.admin_key, route=f"models/{model}")
    wait_for(browser, '#monitoring[data-state="shown"]', timeout_s=30)

    drawn = poll(lambda: chart(browser, "live-chart"), 5)
    assert drawn, "the live chart was not drawn"
    by_label = {d["label"]: d["data"] for d in drawn["datasets"]}
    points = [v for v in by_label["v1 live"] if v is not None]
    assert points and points[-1] == pytest.approx(accuracy["value"]), by_label
    line = by_label["v1 holdout"]
    assert line and all(v == pytest.approx(holdout) for v in line), line  # flat, at the holdout's value
    cell = browser.find_element(By.CSS_SELECTOR, '#live-table tr[data-live-version="1"] td[data-metric="accuracy"]')
    assert cell.text.endswith(f"({ROWS})") and float(cell.get_attribute("data-value")) == pytest.approx(
        accuracy["value"]
    )
    policy = browser.find_element(By.ID, "policy")
    assert policy.get_attribute("data-schedule") == "@every 6h" and "notify" in policy.text
    assert "No drift check yet" in browser.find_element(By.ID, "drift-empty").text

    wait_for(browser, "#monitoring-check").click()
    banner = wait_for(browser, "#banner", text="check done", timeout_s=60).text
    assert f"drifted v1: {SHIFTED}" in banner, banner
    drift = poll(lambda: chart(browser, "drift-chart"), 10)
    assert drift, "the drift chart was not drawn"
    psi, threshold = drift["datasets"]
    assert set(threshold["data"]) == {0.2}
    red = {name for name, color in zip(drift["labels"], psi["colors"], strict=True) if color == DRIFTED}
    shifted = drift["labels"].index(SHIFTED)
    assert psi["data"][shifted] > 1 and red == {SHIFTED}, drift  # nor the output: the trees split on petals
    rows = browser.find_elements(By.CSS_SELECTOR, "#drift-table tr[data-feature]")
    assert {r.get_attribute("data-feature") for r in rows if r.get_attribute("data-drifted") == "yes"} == {SHIFTED}
    shown = browser.find_element(By.ID, "view").text
    assert "[object " not in shown and "undefined" not in shown and "NaN" not in shown, shown

    browser.execute_script("document.getElementById('monitoring').closest('section').scrollIntoView()")
    browser.save_screenshot(str(shots / "monitoring.png"))
    picture = ROOT / "docs" / "console-monitoring.png"
    if not picture.exists() or os.environ.get("DAPRML_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shots / "monitoring.png", picture)
    assert severe_logs(browser) == []


def test_a_reader_sees_the_card_but_is_told_it_may_not_run_a_check(stack, gateway, browser, model):
    issued = gateway.post("/api/keys", json={"name": "monitoring reader", "roles": ["reader"]})
    assert issued.status_code == 201, issued.text
    try:
        sign_in(browser, stack.gateway_url, issued.json()["key"], route=f"models/{model}")
        wait_for(browser, "#monitoring-check").click()
        message = wait_for(browser, "#banner", text="Not allowed").text
        assert "admin" in message, message
        assert browser.find_element(By.ID, "versions").is_displayed()  # still signed in, still on the page
    finally:
        gateway.delete(f"/api/keys/{issued.json()['id']}")

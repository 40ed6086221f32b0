"""The model page's Rollouts card in headless Chromium, on the session stack: a rollout started
from the card's form waits for approval and says so; Approve (with a reason typed into the
prompt) promotes the candidate; a canary rollout started through the API shows its weights and is
followed live until Abort from the card rolls it back; a reader's key sees the card and is told
it may not abort. Screenshot: docs/console-rollouts.png, when missing or
DAPRML_UPDATE_SCREENSHOTS=1.

Written to the contract (services/common/contracts/rollouts.py): the routes, the statuses, the
`traffic` a step sets. The browser, sign-in and page helpers are test_console.py's.
"""

import json
import os
import shutil
from collections.abc import Iterator

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sklearn.datasets import load_iris

from scripts.proc import ROOT
from tests.integration import test_console
from tests.integration.conftest import poll
from tests.integration.test_console import commit, jobs_done, severe_logs, sign_in, unique, wait_for

pytestmark = pytest.mark.integration
browser, shots = test_console.browser, test_console.shots  # the same fixtures: Chromium and a folder for screenshots
FINISHED = ("promoted", "completed", "rolled_back", "failed")
# Long enough that nothing but a person ends it while the test looks.
LONG_CANARY = [{"canary": 10, "for": 1_000_000, "timeout": "2h"}, {"promote": True}]


@pytest.fixture(scope="module")
def model(stack) -> Iterator[str]:
    """iris, its champion v1 and a challenger v2 (a second job); any rollout still running at
    the end aborted."""
    name = unique("rolled")
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(load_iris().target_names)))
    with stack.gateway() as gateway:
        commit(gateway, name, frame)
        jobs_done(gateway, name, 1, timeout_s=180)
        second = {"dataset": name, "estimator": "logistic_regression", "params": {"C": 1e-6}}
        assert gateway.post("/api/training/jobs", json=second).status_code == 202
        jobs_done(gateway, name, 2, timeout_s=180)
        assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == 1
    yield name
    with stack.gateway() as gateway:
        for rollout in gateway.get(f"/api/models/{name}/rollouts").json().get("rollouts", []):
            if rollout["status"] not in FINISHED:
                gateway.post(f"/api/models/{name}/rollouts/{rollout['id']}/abort", params={"reason": "test over"})


def answer_prompt(driver, text: str) -> None:
    WebDriverWait(driver, 10).until(expected_conditions.alert_is_present())
    prompt = driver.switch_to.alert
    prompt.send_keys(text)
    prompt.accept()


def rollout_of(gateway: httpx.Client, name: str, rollout_id: str) -> dict:
    reply = gateway.get(f"/api/models/{name}/rollouts/{rollout_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_rollout_started_from_the_card_waits_for_approval_and_approve_promotes(stack, gateway, browser, model):
    sign_in(browser, stack.gateway_url, stack.admin_key, route=f"models/{model}")
    assert "No rollouts yet" in wait_for(browser, "#rollouts-empty").text
    request = {"candidate": 2, "plan": [{"approval": True}, {"promote": True}], "reason": "from the console"}
    wait_for(browser, "#rollout-start-form summary").click()
    field = wait_for(browser, "#rollout-request")
    field.clear()
    field.send_keys(json.dumps(request))
    wait_for(browser, "#rollout-start").click()
    wait_for(browser, "#banner", text="started")

    current = wait_for(browser, '#rollout-current[data-status="waiting_for_approval"]', timeout_s=60)
    rollout_id = current.get_attribute("data-rollout")
    assert browser.find_element(By.ID, "rollout-step").get_attribute("data-kind") == "approval"
    assert "Waiting for a person" in browser.find_element(By.ID, "rollout-waiting").text
    assert browser.find_element(By.ID, "rollouts").get_attribute("data-polling") == "yes"
    assert rollout_of(gateway, model, rollout_id)["status"] == "waiting_for_approval"

    wait_for(browser, "#rollout-approve").click()
    answer_prompt(browser, "looks right")
    wait_for(browser, '#rollout-current[data-status="promoted"]', timeout_s=60)
    assert "Outcome" in wait_for(browser, "#rollout-outcome").text
    assert browser.find_element(By.ID, "rollouts").get_attribute("data-polling") == "no"
    assert not browser.find_elements(By.CSS_SELECTOR, "#rollout-current button")  # nothing left to decide
    assert gateway.get(f"/api/models/{model}").json()["aliases"]["champion"] == 2
    assert rollout_of(gateway, model, rollout_id)["status"] == "promoted"
    assert severe_logs(browser) == []


def test_a_canary_is_followed_live_and_abort_from_the_card_rolls_it_back(stack, gateway, browser, shots, model):
    champion = gateway.get(f"/api/models/{model}").json()["aliases"]["champion"]
    candidate = 1 if champion == 2 else 2
    started = gateway.post(
        f"/api/models/{model}/rollouts", json={"candidate": candidate, "plan": LONG_CANARY, "reason": "canary test"}
    )
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]
    assert poll(lambda: rollout_of(gateway, model, rollout_id)["traffic"]["canary"], 60), "the canary was never set"

    sign_in(browser, stack.gateway_url, stack.admin_key, route=f"models/{model}")
    current = wait_for(browser, f'#rollout-current[data-rollout="{rollout_id}"][data-status="running"]', timeout_s=30)
    assert current.find_element(By.ID, "rollout-step").get_attribute("data-kind") == "canary"
    weights = browser.find_element(By.ID, "rollout-weights")
    assert json.loads(weights.get_attribute("data-canary")) == [{"version": candidate, "percent": 10}]
    assert float(weights.get_attribute("data-champion-percent")) == 90
    assert browser.find_element(By.ID, "rollouts").get_attribute("data-polling") == "yes"
    assert browser.find_elements(By.CSS_SELECTOR, '#rollouts-older tr[data-status="promoted"]')  # the first test's
    assert not browser.find_elements(By.ID, "rollout-approve")  # not waiting for anyone
    browser.execute_script("window.stayedOnThePage = true")
    browser.execute_script("document.getElementById('rollouts').closest('section').scrollIntoView()")
    browser.save_screenshot(str(shots / "rollouts.png"))
    picture = ROOT / "docs" / "console-rollouts.png"
    if not picture.exists() or os.environ.get("DAPRML_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shots / "rollouts.png", picture)

    wait_for(browser, "#rollout-abort").click()
    answer_prompt(browser, "seen enough")
    wait_for(browser, '#rollout-current[data-status="rolled_back"]', timeout_s=60)
    assert browser.execute_script("return window.stayedOnThePage") is True  # redrawn in place, not reloaded
    assert wait_for(browser, "#rollout-outcome").get_attribute("data-outcome")
    assert gateway.get(f"/api/models/{model}/traffic").json()["traffic"]["canary"] == []
    assert gateway.get(f"/api/models/{model}").json()["aliases"]["champion"] == champion
    shown = browser.find_element(By.ID, "view").text
    assert "[object " not in shown and "undefined" not in shown and "NaN" not in shown, shown
    assert severe_logs(browser) == []


def test_a_reader_sees_the_rollout_but_is_told_it_may_not_abort(stack, gateway, browser, model):
    champion = gateway.get(f"/api/models/{model}").json()["aliases"]["champion"]
    started = gateway.post(
        f"/api/models/{model}/rollouts", json={"candidate": 1 if champion == 2 else 2, "plan": LONG_CANARY}
    )
    assert started.status_code == 201, started.text
    rollout_id = started.json()["id"]
    issued = gateway.post("/api/keys", json={"name": "rollouts reader", "roles": ["reader"]})
    assert issued.status_code == 201, issued.text
    try:
        sign_in(browser, stack.gateway_url, issued.json()["key"], route=f"models/{model}")
        wait_for(browser, f'#rollout-current[data-rollout="{rollout_id}"]', timeout_s=30)
        wait_for(browser, "#rollout-abort").click()
        answer_prompt(browser, "not mine to stop")
        message = wait_for(browser, "#banner", text="Not allowed").text
        assert "admin" in message, message
        assert browser.find_element(By.ID, "versions").is_displayed()  # still signed in, still on the page
        assert rollout_of(gateway, model, rollout_id)["status"] not in FINISHED
    finally:
        gateway.delete(f"/api/keys/{issued.json()['id']}")
        gateway.post(f"/api/models/{model}/rollouts/{rollout_id}/abort", params={"reason": "test over"})

"""The web console in a real browser: Debian's headless Chromium driven by Selenium through
Debian's chromium-driver (nothing downloaded), against the session stack's gateway.

A model with two versions (a good champion and a weak challenger) is made through the API;
the test then signs in with the admin key and looks at what the pages show, promotes v2 from
the page, predicts from the form, and tries a bad key and a reader's key. Screenshots of the
main pages go to the test's tmp folder; the model page's also to docs/console.png (the README's)
when it is missing or DAPRML_UPDATE_SCREENSHOTS=1.
"""

import os
import shutil
import uuid
from pathlib import Path

import httpx
import pandas as pd
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from sklearn.datasets import load_iris, make_classification

from scripts.proc import ROOT
from tests.integration.conftest import poll

pytestmark = pytest.mark.integration
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CSV = {"content-type": "text/csv"}
DONE = ("COMPLETED", "FAILED", "CANCELED")
SETOSA = {"sepal length (cm)": "5.1", "sepal width (cm)": "3.5", "petal length (cm)": "1.4", "petal width (cm)": "0.2"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def commit(gateway: httpx.Client, name: str, frame: pd.DataFrame) -> None:
    reply = gateway.post(
        f"/api/datasets/{name}/versions?target=target&task=classification",
        content=frame.to_csv(index=False).encode(),
        headers=CSV,
    )
    assert reply.status_code == 201, reply.text


def jobs_done(gateway: httpx.Client, dataset: str, count: int, timeout_s: float = 120) -> list[dict]:
    def done():
        jobs = gateway.get("/api/training/jobs", params={"dataset": dataset}).json()["jobs"]
        return jobs if len(jobs) >= count and all(j["status"] in DONE for j in jobs) else None

    jobs = poll(done, timeout_s)
    assert jobs is not None, gateway.get("/api/training/jobs", params={"dataset": dataset}).text
    assert all(j["status"] == "COMPLETED" for j in jobs), jobs
    return jobs


@pytest.fixture(scope="module")
def model(stack) -> str:
    """iris, its champion v1 (the default estimator) and a weak challenger v2."""
    name = unique("console")
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map(dict(enumerate(load_iris().target_names)))
    with stack.gateway() as gateway:
        commit(gateway, name, frame)
        jobs_done(gateway, name, 1)
        # A logistic regression this strongly regularised predicts one class: clearly worse.
        weak = {"dataset": name, "estimator": "logistic_regression", "params": {"C": 1e-6}}
        assert gateway.post("/api/training/jobs", json=weak).status_code == 202
        jobs_done(gateway, name, 2)
        assert gateway.get(f"/api/models/{name}").json()["aliases"] == {"champion": 1, "challenger": 2}
    return name


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.fail(
            "the console tests need Debian's chromium and chromium-driver: "
            "sudo apt-get install -y chromium chromium-driver (make test installs them when run as root)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("console-screenshots")
    print(f"console screenshots in {folder}")
    return folder


def wait_for(driver: WebDriver, css: str, timeout_s: float = 15, text: str | None = None) -> WebElement:
    """The first element `css` finds that is shown (and holds `text`, if given)."""

    def found(d: WebDriver) -> WebElement | bool:
        for element in d.find_elements(By.CSS_SELECTOR, css):
            if element.is_displayed() and (text is None or text in element.text):
                return element
        return False

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.1).until(found)
    except TimeoutException:
        banner = driver.find_element(By.ID, "banner").text
        raise AssertionError(f"{css} {text or ''} not shown in {timeout_s}s; banner: {banner!r}") from None


def sign_in(driver: WebDriver, url: str, key: str, route: str = "models") -> None:
    driver.get(f"{url}/#/{route}")
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    field = wait_for(driver, "#login-key")
    field.send_keys(key)
    driver.find_element(By.ID, "login-submit").click()


def open_page(driver: WebDriver, url: str, route: str, ready: str) -> WebElement:
    driver.get(f"{url}/#/{route}")
    element = wait_for(driver, ready)
    shown = driver.find_element(By.ID, "view").text
    assert "[object " not in shown and "undefined" not in shown and "NaN" not in shown, shown
    return element


def chart_data(driver: WebDriver, canvas_id: str) -> list:
    return driver.execute_script(
        "const c = Chart.getChart(document.getElementById(arguments[0]));"
        "return c ? [c.data.labels, c.data.datasets[0].data] : null;",
        canvas_id,
    )


def severe_logs(driver: WebDriver) -> list[str]:
    """Errors the page logged (scripts that failed, a refused Content-Security-Policy, ...),
    leaving out the API's own answers the page expected and showed (401, 403)."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and " 401 " not in e["message"] and " 403 " not in e["message"]
    ]


def test_the_page_and_its_files_need_no_key_and_stay_out_of_the_api(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as anonymous:
        page = anonymous.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        for asset in ("console.js", "console.css", "vendor/chart.umd.js"):
            assert anonymous.get(f"/console/{asset}").status_code == 200, asset
        for module in ("console.js", "shared/api.js", "views/models.js"):  # native ES modules: JavaScript, or not run
            assert anonymous.get(f"/console/{module}").headers["content-type"].startswith("text/javascript"), module
        assert "Chart.js v4" in anonymous.get("/console/vendor/chart.umd.js").text[:200]
        outside = ("/console/../console.py", "/console/%2e%2e/app.py", "/console/%2e%2e/api.py")
        for missing in ("/console/nothing.js", *outside, "/console/"):
            assert anonymous.get(missing).status_code == 404, missing
        assert anonymous.get("/api/models").status_code == 401  # the data still needs a key
        docs = anonymous.get("/docs")
        assert (
            docs.status_code == 200
            and docs.headers["content-security-policy"] == page.headers["content-security-policy"]
        )
        assert anonymous.get("/redoc").status_code == 404  # ReDoc needs inline styles: not served
        paths = anonymous.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p == "/" or p.startswith("/console")]


def test_a_bad_key_shows_the_gateways_error_and_asks_again(stack, browser, shots):
    admin = stack.admin_key
    wrong = admin[:-1] + ("A" if admin[-1] != "A" else "B")  # well-formed, the right id, not the secret
    sign_in(browser, stack.gateway_url, wrong)
    error = wait_for(browser, "#login-error")
    assert error.text.startswith("Refused:") and "key" in error.text and "malformed" not in error.text, error.text
    assert browser.find_element(By.ID, "login-key").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('daprml.apiKey')") is None
    browser.save_screenshot(str(shots / "bad-key.png"))
    sign_in(browser, stack.gateway_url, "not a key at all")
    assert "malformed" in wait_for(browser, "#login-error").text


def test_signed_in_the_console_shows_the_dataset_profile_jobs_and_models(stack, browser, shots, model):
    url = stack.gateway_url
    sign_in(browser, url, stack.admin_key, route="datasets")
    wait_for(browser, f'#datasets tr[data-dataset="{model}"]')

    open_page(browser, url, f"datasets/{model}/versions/1", "#profile [data-column]")
    assert poll(lambda: chart_data(browser, "missing-chart"), 5), "the missing-values chart was not drawn"
    labels, missing = chart_data(browser, "missing-chart")
    assert "petal length (cm)" in labels and missing == [0] * len(labels)
    balance = browser.find_elements(By.CSS_SELECTOR, '[data-chart="class-balance"] .value')
    assert [b.text for b in balance] and all(b.text.endswith("%") for b in balance)
    counts = browser.find_elements(By.CSS_SELECTOR, '[data-column="target"] [data-chart="counts"] .value')
    assert sum(int(c.get_attribute("data-value")) for c in counts) == 149  # iris, one duplicate dropped
    mean = browser.find_element(By.CSS_SELECTOR, '[data-column="petal length (cm)"] [data-stat="mean"]')
    assert float(mean.text) == pytest.approx(3.75, abs=0.05)
    browser.save_screenshot(str(shots / "dataset-profile.png"))

    open_page(browser, url, f"jobs?dataset={model}", "#jobs")
    statuses = browser.find_elements(By.CSS_SELECTOR, "#jobs tr[data-status]")
    assert [s.get_attribute("data-status") for s in statuses] == ["COMPLETED", "COMPLETED"]
    assert browser.find_element(By.ID, "jobs-live").get_attribute("data-polling") == "no"
    browser.save_screenshot(str(shots / "jobs.png"))

    open_page(browser, url, "models", f'#models tr[data-model="{model}"]')
    api = httpx.get(f"{url}/api/models/{model}", headers={"authorization": f"Bearer {stack.admin_key}"}).json()
    accuracy = [v["metrics"]["accuracy"] for v in api["versions"]]
    open_page(browser, url, f"models/{model}", "#versions")
    assert poll(lambda: chart_data(browser, "metric-chart"), 5), "the metric chart was not drawn"
    labels, values = chart_data(browser, "metric-chart")
    assert labels == ["v1", "v2"] and values == pytest.approx(accuracy) and values[0] > values[1]
    cells = browser.find_elements(By.CSS_SELECTOR, '#versions td[data-metric="accuracy"]')
    assert [float(c.text) for c in cells] == pytest.approx(accuracy[::-1], abs=1e-3)
    assert browser.find_element(By.CSS_SELECTOR, '[data-alias-row="champion"] [data-alias-version]').text == "v1"
    browser.save_screenshot(str(shots / "model.png"))
    # The README's picture: made when missing, refreshed on request (not on every run, which
    # would leave the tracked file changed after each `make test`).
    readme_shot = ROOT / "docs" / "console.png"
    if not readme_shot.exists() or os.environ.get("DAPRML_UPDATE_SCREENSHOTS") == "1":
        readme_shot.parent.mkdir(exist_ok=True)
        shutil.copyfile(shots / "model.png", readme_shot)

    open_page(browser, url, f"models/{model}/versions/2", "#confusion")
    cells = browser.find_elements(By.CSS_SELECTOR, "#confusion td.cell")
    counts = [int(c.get_attribute("data-count")) for c in cells]
    assert len(counts) == 9 and sum(counts) == 30  # 3 classes, a holdout of 20% of 149 rows
    assert all(c.text == str(n) for c, n in zip(cells, counts, strict=True))
    per_class = browser.find_elements(By.CSS_SELECTOR, "#per-class tr[data-class]")
    assert {r.get_attribute("data-class") for r in per_class} == {"setosa", "versicolor", "virginica"}
    browser.save_screenshot(str(shots / "confusion-matrix.png"))
    assert severe_logs(browser) == []


def test_an_admin_promotes_v2_from_the_page_and_rolls_back(stack, browser, shots, model):
    url = stack.gateway_url
    api = httpx.Client(base_url=url, headers={"authorization": f"Bearer {stack.admin_key}"}, timeout=30)
    sign_in(browser, url, stack.admin_key, route=f"models/{model}")
    wait_for(browser, '[data-promote="2"]').click()
    wait_for(browser, "#banner", text="champion moved to v2 (was v1)")
    assert wait_for(browser, '[data-alias-row="champion"] [data-alias-version]').text == "v2"
    assert api.get(f"/api/models/{model}").json()["aliases"]["champion"] == 2
    browser.save_screenshot(str(shots / "promoted.png"))

    wait_for(browser, "#rollback").click()
    wait_for(browser, "#banner", text="rolled back to v1")
    assert api.get(f"/api/models/{model}").json()["aliases"]["champion"] == 1
    assert wait_for(browser, '[data-alias-row="champion"] [data-alias-version]').text == "v1"


def test_a_reader_key_sees_the_model_but_is_told_it_may_not_promote(stack, browser, model):
    url = stack.gateway_url
    api = httpx.Client(base_url=url, headers={"authorization": f"Bearer {stack.admin_key}"}, timeout=30)
    issued = api.post("/api/keys", json={"name": "console reader", "roles": ["reader"]})
    assert issued.status_code == 201, issued.text
    try:
        sign_in(browser, url, issued.json()["key"], route=f"models/{model}")
        wait_for(browser, '[data-promote="2"]').click()
        message = wait_for(browser, "#banner", text="Not allowed").text
        assert "admin" in message, message
        assert browser.find_element(By.ID, "versions").is_displayed()  # still signed in, still on the page
        assert api.get(f"/api/models/{model}").json()["aliases"]["champion"] == 1
    finally:
        api.delete(f"/api/keys/{issued.json()['id']}")


def test_a_prediction_from_the_form_built_from_the_models_features(stack, browser, shots, model):
    url = stack.gateway_url
    sign_in(browser, url, stack.admin_key, route=f"models/{model}/predict")
    wait_for(browser, "#predict-form")
    inputs = browser.find_elements(By.CSS_SELECTOR, "#predict-form input[data-feature]")
    assert {i.get_attribute("data-feature") for i in inputs} == set(SETOSA)
    assert all(i.get_attribute("data-datatype") == "FP64" for i in inputs)
    for field in inputs:
        field.clear()
        field.send_keys(SETOSA[field.get_attribute("data-feature")])
    browser.find_element(By.ID, "predict-submit").click()
    assert wait_for(browser, "#prediction-value").text == "setosa"
    shares = browser.find_elements(By.CSS_SELECTOR, '[data-chart="probabilities"] .value')
    probabilities = [float(s.get_attribute("data-value")) for s in shares]
    assert len(probabilities) == 3 and sum(probabilities) == pytest.approx(1, abs=1e-6) and probabilities[0] > 0.9
    browser.save_screenshot(str(shots / "predict.png"))


def test_the_jobs_page_follows_a_running_job_until_it_is_done(stack, browser, shots):
    name = unique("console-slow")
    url = stack.gateway_url
    with stack.gateway() as gateway:
        assert gateway.put(f"/api/training/policies/{name}", json={"auto_train": False}).status_code == 200
        X, y = make_classification(n_samples=20_000, n_features=8, n_informative=5, random_state=3)
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).round(4).assign(target=[f"c{v}" for v in y])
        commit(gateway, name, frame)
        slow = {"dataset": name, "estimator": "random_forest", "params": {"n_estimators": 300}}
        submitted = gateway.post("/api/training/jobs", json=slow)
        assert submitted.status_code == 202, submitted.text
    sign_in(browser, url, stack.admin_key, route=f"jobs?dataset={name}")
    wait_for(browser, '#jobs tr[data-status="RUNNING"], #jobs tr[data-status="PENDING"]')
    assert browser.find_element(By.ID, "jobs-live").get_attribute("data-polling") == "yes"
    browser.execute_script("window.stayedOnThePage = true")
    browser.save_screenshot(str(shots / "job-running.png"))
    wait_for(browser, '#jobs tr[data-status="COMPLETED"]', timeout_s=180)
    assert browser.execute_script("return window.stayedOnThePage") is True  # updated in place, not reloaded
    assert browser.find_element(By.ID, "jobs-live").get_attribute("data-polling") == "no"
    assert f"{name} v1 champion" in browser.find_element(By.CSS_SELECTOR, "#jobs tr[data-status]").text
    browser.save_screenshot(str(shots / "job-done.png"))


def stored_anywhere(driver: WebDriver) -> str:
    """Everything this page's origin keeps in the browser that a script of it could read."""
    return driver.execute_script(
        "return JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage), document.cookie]);"
    )


def test_the_api_docs_load_from_the_gateway_alone_and_show_its_operations(stack, browser, shots):
    """The machine has no internet: a page that needed a CDN would show nothing."""
    browser.get(f"{stack.gateway_url}/docs")
    wait_for(browser, ".swagger-ui .info .title", timeout_s=30)
    operations = browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-summary-path")
    paths = {o.get_attribute("data-path") or o.text for o in operations}
    assert "/api/models" in paths and "/api/keys" in paths and len(paths) > 20, paths
    operations[0].click()  # opens under the policy too (no inline style or script needed)
    wait_for(browser, ".opblock.is-open .opblock-body")
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name);")
    assert loaded and all(url.startswith(stack.gateway_url) for url in loaded), loaded
    browser.save_screenshot(str(shots / "api-docs.png"))
    assert severe_logs(browser) == []


def test_the_key_cannot_be_read_from_the_api_docs_after_signing_in(stack, browser):
    url = stack.gateway_url
    sign_in(browser, url, stack.admin_key, route="models")
    wait_for(browser, "#signout")  # signed in
    console = browser.current_window_handle
    assert stack.admin_key not in stored_anywhere(browser)  # in the page's memory only

    # The console's link: a window of its own, with no handle on the console's.
    wait_for(browser, 'a[href="/docs"]').click()
    WebDriverWait(browser, 15).until(lambda d: len(d.window_handles) == 2)
    docs = next(h for h in browser.window_handles if h != console)
    browser.switch_to.window(docs)
    wait_for(browser, ".swagger-ui .info .title", timeout_s=30)
    assert browser.execute_script("return window.opener") is None
    assert "dml_" not in stored_anywhere(browser)

    # A docs page that opens the console itself keeps a handle on it: the console will not sign in there.
    browser.execute_script("window.opened = window.open('/#/models')")
    WebDriverWait(browser, 15).until(lambda d: len(d.window_handles) == 3)
    opened = next(h for h in browser.window_handles if h not in (console, docs))
    browser.switch_to.window(opened)
    assert "opened by another page" in wait_for(browser, "#login-error").text
    assert not browser.find_element(By.ID, "login-key").is_enabled()
    browser.close()
    browser.switch_to.window(docs)
    browser.close()

    # The console's own tab, gone on to /docs: nothing of the key is left for the page there.
    browser.switch_to.window(console)
    browser.get(f"{url}/docs")
    wait_for(browser, ".swagger-ui .info .title", timeout_s=30)
    assert "dml_" not in stored_anywhere(browser)

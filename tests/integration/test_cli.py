"""The daprml command-line client against the real stack, run as users run it: the installed
console script in a subprocess, with DAPRML_URL (and DAPRML_API_KEY, once the stack has a key)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scripts.proc import free_port
from services.cli.upload import Saved, parts
from tests.integration.conftest import poll

pytestmark = pytest.mark.integration
DAPRML = Path(sys.executable).with_name("daprml")
DONE = ("COMPLETED", "FAILED", "CANCELED")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def daprml(stack, tmp_path):
    """Runs the CLI in an empty directory (no .data/admin-key of a developer's stack), with its
    own upload cache; answers the completed process."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["DAPRML_URL"] = stack.gateway_url
    key = stack.admin_key
    if key is not None:
        env["DAPRML_API_KEY"] = key

    def run(*args: str, url: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        environment = env | ({"DAPRML_URL": url} if url else {})
        return subprocess.run(
            [str(DAPRML), *args], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=timeout
        )

    return run


def houses(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rooms = rng.integers(1, 7, n)
    area = (rooms * 22 + rng.normal(0, 10, n)).round(1)
    price = (area * 2600 + rooms * 9000 + rng.normal(0, 15000, n)).round()
    return pd.DataFrame({"rooms": rooms, "area": area, "price": price})


def finished_jobs(gateway, dataset: str, count: int) -> list[dict]:
    def done():
        jobs = gateway.get("/api/training/jobs", params={"dataset": dataset}).json()["jobs"]
        return jobs if len(jobs) >= count and all(j["status"] in DONE for j in jobs) else None

    jobs = poll(done, 180)
    assert jobs is not None, gateway.get("/api/training/jobs", params={"dataset": dataset}).json()
    return jobs


def test_upload_train_predict_promote_and_rollback(daprml, gateway, tmp_path):
    name = unique("houses")
    houses(400).to_csv(tmp_path / "houses.csv", index=False)

    up = daprml("datasets", "upload", "houses.csv", "--name", name, "--target", "price", "--task", "regression",
                "--part-size", "2K")  # fmt: skip
    assert up.returncode == 0, up.stderr
    assert f"{name} v1 (new): 400 rows accepted, 0 rejected" in up.stdout
    shown = json.loads(daprml("datasets", "show", name, "--version", "latest", "--json").stdout)
    assert shown["row_count"] == 400 and len(shown["parts"]) > 1  # it went up in parts
    assert name in daprml("datasets", "show", name).stdout
    listed = json.loads(daprml("datasets", "list", "--json").stdout)
    assert name in [d["name"] for d in listed["datasets"]]

    trained = daprml("train", name, "--estimator", "ridge", "--param", "alpha=0.5")
    assert trained.returncode == 0, trained.stderr
    assert "COMPLETED" in trained.stdout and "ridge" in trained.stdout
    jobs = finished_jobs(gateway, name, 2)  # the ridge job and the one the commit started
    assert all(j["status"] == "COMPLETED" for j in jobs), jobs
    as_json = json.loads(daprml("jobs", "list", "--dataset", name, "--json").stdout)
    assert {j["id"] for j in as_json["jobs"]} == {j["id"] for j in jobs}
    ridge = next(j for j in jobs if j["estimator"] == "ridge")
    assert daprml("jobs", "show", ridge["id"]).returncode == 0

    (tmp_path / "rows.csv").write_text("rooms,area,price\n3,70.5,250000\n5,NA,\n1,20,90000\n6,140.2,400000\n")
    records = [
        {"rooms": 3, "area": 70.5},
        {"rooms": 5, "area": None},
        {"rooms": 1, "area": 20},
        {"rooms": 6, "area": 140.2},
    ]
    for version in (1, 2):
        written = daprml("predict", name, "--file", "rows.csv", "--version", str(version), "--output", "out.json")
        assert written.returncode == 0, written.stderr
        by_cli = [row["prediction"] for row in json.loads((tmp_path / "out.json").read_text())]
        by_api = gateway.post(f"/api/models/{name}/predict", json={"records": records, "version": version}).json()
        assert by_cli == pytest.approx(by_api["predictions"], rel=1e-12)
    table = daprml("predict", name, "--file", "rows.csv")
    assert table.returncode == 0 and name in table.stdout and "prediction" in table.stdout

    champion = gateway.get(f"/api/models/{name}").json()["aliases"]["champion"]
    other = 3 - champion
    promoted = daprml("models", "promote", name, str(other))
    assert promoted.returncode == 0, promoted.stderr
    assert promoted.stdout.strip() == f"{name}: champion -> v{other} (was v{champion})"
    assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == other
    rolled = daprml("models", "rollback", name)
    assert rolled.returncode == 0, rolled.stderr
    assert gateway.get(f"/api/models/{name}").json()["aliases"]["champion"] == champion
    model = json.loads(daprml("models", "show", name, "--json").stdout)
    assert [h["reason"] for h in model["history"]][-2:] == ["api", "rollback"]
    assert daprml("models", "show", name, "--version", "champion").returncode == 0
    assert name in daprml("models", "list").stdout


def test_an_interrupted_upload_is_continued_by_running_it_again(daprml, stack, gateway, tmp_path, monkeypatch):
    name = unique("resumed")
    path = tmp_path / "houses.csv"
    houses(300, seed=1).to_csv(path, index=False)
    # What an interrupted run leaves: an open upload holding the first two parts, and the state file.
    upload_id = gateway.post(f"/api/datasets/{name}/uploads", params={"target": "price"}).json()["upload_id"]
    _, bodies = parts(path, 2048)
    for number, (body, _) in zip((1, 2), bodies, strict=False):
        put = gateway.put(f"/api/datasets/{name}/uploads/{upload_id}/parts/{number}", content=body,
                          headers={"content-type": "text/csv"})  # fmt: skip
        assert put.status_code == 200, put.text
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where the CLI below looks
    Saved(upload_id, name, stack.gateway_url.rstrip("/"), 2048, [1, 2]).save(path)
    target = Saved.file_of(path)
    assert target.exists()

    again = daprml("datasets", "upload", "houses.csv", "--name", name, "--part-size", "2K")
    assert again.returncode == 0, again.stderr
    assert "resumed: 2 parts were already at the gateway" in again.stdout
    assert f"{name} v1 (new): 300 rows accepted" in again.stdout
    assert not target.exists()
    assert gateway.get(f"/api/datasets/{name}/uploads/{upload_id}").json()["state"] == "committed"


def test_a_bad_key_exits_4_with_one_readable_line(daprml):
    result = daprml("--key", "not-the-key", "datasets", "list")
    assert result.returncode == 4, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("daprml: ") and "(HTTP 40" in line and "--key" in line


def test_a_stopped_gateway_exits_3_saying_it_cannot_be_reached(daprml):
    url = f"http://127.0.0.1:{free_port()}"
    result = daprml("datasets", "list", url=url)
    assert result.returncode == 3
    assert result.stderr.strip() == f"daprml: cannot reach the gateway at {url} (is the stack up? make up)"


def test_status_lists_every_service(daprml):
    result = daprml("status", "--json")
    assert result.returncode == 0, result.stderr
    assert {s["service"] for s in json.loads(result.stdout)["services"]} >= {"ingestion", "training", "inference"}

"""What `make run` shows once the stack answers: scikit-learn's sample datasets loaded through
the gateway, a model of each trained and registered by a workflow, predictions with each
champion (JSON and OIP v2), and one model monitored: its live accuracy from the actual classes
sent back, and a drift check before and after its inputs shift. Imported only by
`python -m scripts.stack run`: it needs pandas and scikit-learn, which the other commands do not."""

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from scripts import predictions, samples

if TYPE_CHECKING:
    from scripts.stack import Stack


def load_samples(stack: "Stack") -> list[str]:
    print("samples: loading scikit-learn's datasets through the gateway")
    results = samples.load(stack.gateway_url, list(samples.SAMPLES), stack.admin_key)
    for result in results:
        print(f"  {samples.describe(result)}")
    flowers = next(r for r in results if r["dataset"] == "flowers")
    print(f"  flowers: the first rejected rows: {flowers.get('upload', {}).get('rejected_rows', [])[:3]}")
    with stack.gateway() as gateway:
        profile = gateway.get("/api/datasets/flowers/versions/latest").json()["profile"]
    width = profile["columns"]["sepal_width"]
    print(
        f"  flowers profile: sepal_width missing {width['missing']}, mean {width['mean']:.2f}, "
        f"class balance {profile['class_balance']}"
    )
    return [r["dataset"] for r in results]


def show_models(stack: "Stack", datasets: list[str], timeout_s: float = 180) -> bool:
    """Asks for a model of each dataset's latest version and waits for it. Committing a version
    starts that same job already (the job id is derived from what it trains), so this only
    finds it; for a dataset loaded before, it trains one. Returns whether every one made it."""
    print("models: a model of each dataset's latest version, trained and registered by a workflow")
    ok = True
    with stack.gateway() as gateway:
        for name in datasets:
            submitted = gateway.post("/api/training/jobs", json={"dataset": name})
            submitted.raise_for_status()
            job = _finished(gateway, submitted.json()["id"], timeout_s)
            if job is None or job["status"] != "COMPLETED":
                print(f"  {name:14} job {submitted.json()['id']}: {job['error'] if job else 'not finished in time'}")
                ok = False
                continue
            result = job["result"]
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items())
            champion = gateway.get(f"/api/models/{result['model']}").json()["aliases"].get("champion")
            print(
                f"  {name:14} v{result['version']} {result['promotion']['alias']:10} (champion v{champion}; "
                f"{job['estimator']} on dataset v{job['version']}): {metrics}"
            )
    return ok


def show_predictions(stack: "Stack", datasets: list[str]) -> bool:
    return predictions.show(stack.gateway_url, datasets, key=stack.admin_key)


def _finished(gateway: httpx.Client, job_id: str, timeout_s: float) -> dict | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = gateway.get(f"/api/training/jobs/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELED"):
            return job
        time.sleep(0.5)
    return None


MONITORED = "iris"
SHIFTED = "sepal width (cm)"
SHIFT_SD = 5.0
DRAWN = 300  # rows a check reads: enough for a PSI over 10 bins (200 at least, domain/drift.py)


def show_monitoring(stack: "Stack", name: str = MONITORED, timeout_s: float = 90) -> bool:
    """Sends the model DRAWN predictions drawn from its own dataset and their true classes as
    feedback, sets a monitoring policy reading the last DRAWN rows, checks drift, sends DRAWN
    more with SHIFTED moved by SHIFT_SD standard deviations and checks again; prints the live
    accuracy and each feature's PSI in both checks. Returns whether every step answered."""
    print(f"monitoring: {name}, its live accuracy and drift ({DRAWN} predictions drawn from its data, then")
    print(f"  {DRAWN} more with {SHIFTED!r} shifted by {SHIFT_SD:g} standard deviations)")
    frame = samples.SAMPLES[name]()
    features = frame.drop(columns="target")
    with stack.gateway(timeout_s=120) as gateway:
        try:
            _predict_with_feedback(gateway, name, frame, seed=1, timeout_s=timeout_s)
            live = _live(gateway, name, timeout_s)
            champion = _ok(gateway.get(f"/api/models/{name}/versions/champion"))
            holdout = (champion.get("metrics") or {}).get("accuracy")  # on its holdout, when trained
            policy = {"window_rows": DRAWN, "window_hours": 1, "on_drift": "notify"}
            _ok(gateway.put(f"/api/models/{name}/monitoring", params={"reason": "make run"}, json=policy))
            before = _check(gateway, name)
            shifted = features.sample(DRAWN, replace=True, random_state=np.random.RandomState(2))
            shifted[SHIFTED] = shifted[SHIFTED] + SHIFT_SD * features[SHIFTED].std()
            _predict(gateway, name, shifted.to_dict(orient="records"), timeout_s)
            after = _check(gateway, name)
        except (httpx.HTTPError, TimeoutError, KeyError) as exc:
            print(f"  monitoring did not answer as expected: {exc}")
            return False
    accuracy = live["window"]["metrics"].get("accuracy") or {}
    print(
        f"  live accuracy {accuracy.get('value', float('nan')):.3f} over {accuracy.get('count', 0)} pairs "
        f"(the last {live['settings']['window_pairs']} of {live['settings']['window_hours']:g} h)"
        + (f"; holdout {holdout:.3f}" if holdout is not None else "")
    )
    print(f"  drift check, PSI by feature (drifted above {before['threshold']:g}):")
    print(f"    {'':22} {'drawn from the data':>20} {'shifted':>20}")
    for feature in [*before["features"], "output"]:
        a = before["output"] if feature == "output" else before["features"][feature]
        b = after["output"] if feature == "output" else after["features"].get(feature, {})
        print(f"    {feature:22} {_psi(a):>20} {_psi(b):>20}")
    print(f"  drifted: {', '.join(before['drifted']) or 'nothing'}, then {', '.join(after['drifted']) or 'nothing'}")
    return True


def _predict_with_feedback(gateway: httpx.Client, name: str, frame: Any, seed: int, timeout_s: float) -> None:
    drawn = frame.sample(DRAWN, replace=True, random_state=np.random.RandomState(seed))
    ids = _predict(gateway, name, drawn.drop(columns="target").to_dict(orient="records"), timeout_s)
    actuals = [{"prediction_id": pid, "actual": actual} for pid, actual in zip(ids, drawn["target"], strict=True)]
    _ok(gateway.post(f"/api/models/{name}/feedback", json=actuals))


def _predict(gateway: httpx.Client, name: str, records: list[dict], timeout_s: float) -> list[str]:
    """Predicts the records and waits until the monitor captured every one; their ids."""
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    ids: list[str] = _ok(gateway.post(f"/api/models/{name}/predict", json={"records": records}))["prediction_ids"]
    deadline, wanted = time.monotonic() + timeout_s, set(ids)
    while time.monotonic() < deadline:
        if wanted <= _captured_since(gateway, name, since):
            return ids
        time.sleep(1)
    raise TimeoutError(f"the monitor did not capture the {len(ids)} predictions within {timeout_s:.0f} s")


def _captured_since(gateway: httpx.Client, name: str, since: str) -> set[str]:
    found: set[str] = set()
    query: dict[str, Any] = {"since": since, "limit": 1000}
    for _ in range(10):  # 10,000 rows at most: more than this walkthrough makes
        page = _ok(gateway.get(f"/api/models/{name}/predictions", params=query))
        found |= {r["prediction_id"] for r in page["predictions"]}
        if page["next_since"] is None:
            break
        query = {"since": page["next_since"], "after": page["next_after"], "limit": 1000}
    return found


def _live(gateway: httpx.Client, name: str, timeout_s: float) -> dict[str, Any]:
    """The live report once every actual sent is joined with its prediction (none pending)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report: dict[str, Any] = _ok(gateway.get(f"/api/models/{name}/monitoring/live"))
        # pending: actuals whose prediction is not read yet (none once ours are joined).
        if report["window"]["count"] > 0 and (report["pending"] == 0 or report["window"]["count"] >= DRAWN):
            return report
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the actual classes were not joined within {timeout_s:.0f} s: {report['pending']} pending"
            )
        time.sleep(1)


def _check(gateway: httpx.Client, name: str) -> dict[str, Any]:
    """The champion's report of a drift check run now."""
    result = _ok(gateway.post(f"/api/models/{name}/monitoring/check"))
    report: dict[str, Any] = next(r for r in result["reports"] if r["version"] == result["champion"])
    return report


def _psi(score: dict[str, Any]) -> str:
    if score.get("psi") is None:
        return "-"
    return f"{score['psi']:.3f}" + (" DRIFTED" if score.get("drifted") else "")


def _ok(reply: httpx.Response) -> Any:
    if reply.is_error:
        raise httpx.HTTPStatusError(
            f"{reply.request.method} {reply.request.url.path}: {reply.status_code} {reply.text[:300]}",
            request=reply.request,
            response=reply,
        )
    return reply.json()

"""What `make run` shows once the stack answers: scikit-learn's sample datasets loaded through
the gateway, a model of each trained and registered by a workflow, predictions with each
champion (JSON and OIP v2), and one model monitored: its live accuracy from the actual classes
sent back, and a drift check before and after its inputs shift. Imported only by
`python -m scripts.stack run`: it needs pandas and scikit-learn, which the other commands do not."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np

from scripts import predictions, samples

if TYPE_CHECKING:
    from scripts.stack import Stack

T = TypeVar("T")


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
    feedback, sets a monitoring policy that reads the last DRAWN rows and retrains on drift,
    checks drift, sends DRAWN more (with their classes) with SHIFTED moved by SHIFT_SD standard
    deviations and checks again; prints the live accuracy, each feature's PSI in both checks, and
    the version the retrain the second check ordered made. Returns whether every step answered."""
    print(f"monitoring: {name}, its live accuracy and drift ({DRAWN} predictions drawn from its data, then")
    print(f"  {DRAWN} more with {SHIFTED!r} shifted by {SHIFT_SD:g} standard deviations; both with their classes)")
    frame = samples.SAMPLES[name]()
    with stack.gateway(timeout_s=120) as gateway:
        try:
            _predict_with_feedback(gateway, name, _drawn(frame, seed=1), timeout_s=timeout_s)
            live = _live(gateway, name, timeout_s)
            champion = _ok(gateway.get(f"/api/models/{name}/versions/champion"))
            holdout = (champion.get("metrics") or {}).get("accuracy")  # on its holdout, when trained
            # Cooldown 0: every `make run` retrains (a policy for production keeps the default day).
            policy = {
                "window_rows": DRAWN,
                "window_hours": 1,
                "on_drift": "retrain",
                "retrain_min_rows": DRAWN,
                "retrain_cooldown_hours": 0,
            }
            _ok(gateway.put(f"/api/models/{name}/monitoring", params={"reason": "make run"}, json=policy))
            before, _ = _check(gateway, name)
            _predict_with_feedback(gateway, name, _drawn(frame, seed=2, shift_sd=SHIFT_SD), timeout_s=timeout_s)
            after, check_id = _check(gateway, name)
            retrained = _retrained(gateway, name, check_id, timeout_s=180)
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
    print(f"  retrain on drift (policy on_drift: retrain): {retrained}")
    return True


def _drawn(frame: Any, seed: int, shift_sd: float = 0.0) -> Any:
    """DRAWN rows of the frame (with replacement, seeded), SHIFTED moved by `shift_sd` standard deviations."""
    drawn = frame.sample(DRAWN, replace=True, random_state=np.random.RandomState(seed))
    drawn[SHIFTED] = drawn[SHIFTED] + shift_sd * frame[SHIFTED].std()
    return drawn


def _retrained(gateway: httpx.Client, name: str, check_id: str, timeout_s: float) -> str:
    """What became of the retrain the check ordered, in words: the history entry its outcome
    records (the monitor's relay carries it out within seconds), then its training job's end."""
    deadline = time.monotonic() + timeout_s

    def outcome() -> dict[str, Any] | None:
        entries = _ok(gateway.get(f"/api/models/{name}/history", params={"limit": 20}))["entries"]
        return next(
            (
                e
                for e in entries
                if e["action"].startswith("monitoring.retrain") and e["details"].get("check_id") == check_id
            ),
            None,
        )

    entry = _until(outcome, timeout_s, lambda: f"the retrain of check {check_id} was not done within {timeout_s:.0f} s")
    details = entry["details"]
    if entry["action"] != "monitoring.retrained":
        return f"{entry['action'].removeprefix('monitoring.')}: {entry['reason']}"
    job = _finished(gateway, details["job_id"], max(1.0, deadline - time.monotonic()))
    rows = f"{details['dataset']} v{details['dataset_version']}: v{details['base_version']}'s rows"
    made = f"{rows} + {details['feedback_rows']} captured with their classes"
    if job is None or job["status"] != "COMPLETED":
        return f"{made}; its job {details['job_id']} {job['status'] if job else 'did not finish in time'}"
    result = job["result"]
    promotion = result["promotion"]
    return (
        f"{made}; trained {name} v{result['version']}, now {promotion['alias']} "
        f"(accuracy {result['metrics'].get('accuracy', float('nan')):.3f}; a version trained on feedback stays "
        "challenger until an admin moves champion)"
    )


def _predict_with_feedback(gateway: httpx.Client, name: str, drawn: Any, timeout_s: float) -> None:
    ids = _predict(gateway, name, drawn.drop(columns="target").to_dict(orient="records"), timeout_s)
    actuals = [{"prediction_id": pid, "actual": actual} for pid, actual in zip(ids, drawn["target"], strict=True)]
    _ok(gateway.post(f"/api/models/{name}/feedback", json=actuals))


def _predict(gateway: httpx.Client, name: str, records: list[dict], timeout_s: float) -> list[str]:
    """Predicts the records and waits until the monitor captured every one; their ids."""
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    ids: list[str] = _ok(gateway.post(f"/api/models/{name}/predict", json={"records": records}))["prediction_ids"]
    wanted = set(ids)
    return _until(
        lambda: ids if wanted <= _captured_since(gateway, name, since) else None,
        timeout_s,
        lambda: f"the monitor did not capture the {len(ids)} predictions within {timeout_s:.0f} s",
    )


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
    last: dict[str, Any] = {}

    def joined() -> dict[str, Any] | None:
        report: dict[str, Any] = _ok(gateway.get(f"/api/models/{name}/monitoring/live"))
        last.update(report)
        # pending: actuals whose prediction is not read yet (none once ours are joined).
        if report["window"]["count"] > 0 and (report["pending"] == 0 or report["window"]["count"] >= DRAWN):
            return report
        return None

    return _until(
        joined,
        timeout_s,
        lambda: f"the actual classes were not joined within {timeout_s:.0f} s: {last.get('pending')} pending",
    )


def _until(check: Callable[[], T | None], timeout_s: float, why: Callable[[], str]) -> T:
    """The check's first answer that is not None, asked every second (at least once); past
    `timeout_s`, TimeoutError with why()."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(why())
        time.sleep(1)


def _check(gateway: httpx.Client, name: str) -> tuple[dict[str, Any], str]:
    """The champion's report of a drift check run now, and the check's id."""
    result = _ok(gateway.post(f"/api/models/{name}/monitoring/check"))
    report: dict[str, Any] = next(r for r in result["reports"] if r["version"] == result["champion"])
    return report, result["check_id"]


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

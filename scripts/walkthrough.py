"""What `make run` shows once the stack answers: scikit-learn's sample datasets loaded through
the gateway, a model of each trained and registered by a workflow, and predictions with each
champion (JSON and OIP v2). Imported only by `python -m scripts.stack run`: it needs pandas and
scikit-learn, which the other commands do not."""

import time
from typing import TYPE_CHECKING

import httpx

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

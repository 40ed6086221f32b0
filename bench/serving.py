"""What the inference bench serves and calls: the generated datasets, the isolated stack (with,
when asked, a second inference app with other settings), the champions trained on it, the
request bodies of each protocol, the targets, and the check that every target answers the
pipeline's own predictions before anything is timed."""

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from bench.common import CLASSES, classification, classification_schema
from bench.httpload import Target
from bench.mlserver import MLServer
from scripts.runfile import free_app_ports, with_ports, write_config
from scripts.stack import Stack
from services.common import modelfiles

COLORS = np.array(["red", "green", "blue", "cyan"])
CHECK_ROWS = 500
MLSERVER_RUNTIME = "sklearn (mlserver_sklearn)"
KEY_RATE = 100_000  # calls a second: the most a key may be given


def schema(mixed: bool) -> dict[str, Any]:
    return classification_schema([{"name": "color", "type": "category"}] if mixed else [])


def generate(rows: int, mixed: bool) -> pd.DataFrame:
    columns, y = classification(rows)
    frame = pd.DataFrame(columns)
    if mixed:
        # A category that carries some signal: the class, shuffled for a third of the rows.
        rng = np.random.default_rng(1)
        noisy = np.where(rng.random(rows) < 0.33, rng.integers(0, len(COLORS), rows), y)
        frame["color"] = COLORS[noisy]
    frame["label"] = CLASSES[y]
    return frame


@dataclass
class Model:
    kind: str  # numeric or mixed
    name: str
    version: int = 0
    pipeline: Any = None
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # features only
    trained_s: float = 0.0


def isolated_stack(workdir: Path, run_id: str, alt_env: dict[str, str]) -> Stack:
    """The isolated stack; with `alt_env`, a second inference app (app id 'inferencealt-<run_id>',
    not behind the gateway) with those environment variables."""
    stack = Stack.isolated(workdir, run_id)
    if not alt_env:
        return stack
    spec = yaml.safe_load(stack.run_file.read_text())
    base = next(a for a in spec["apps"] if a["appID"] == f"inference-{run_id}")
    # Ports of its own, its metrics port included (its env is a copy, not the first app's).
    alt = with_ports(dict(base, appID=f"inferencealt-{run_id}"), free_app_ports())
    alt.update(env={**(alt.get("env") or {}), **alt_env})
    spec["apps"].append(alt)
    stack.run_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    # The registry's sidecar admits only the callers its Configuration names: add the second app.
    registry = Path(next(a for a in spec["apps"] if a["appID"] == f"registry-{run_id}")["configFilePath"])
    config = yaml.safe_load(registry.read_text())
    callers = [p["appId"] for p in config["spec"]["accessControl"]["policies"]]
    write_config(config, [*callers, alt["appID"]], registry)
    return Stack(stack.run_file, workdir)


def train(gateway: httpx.Client, models: list[Model], rows: int, timeout_s: float) -> None:
    """Uploads each dataset (its commit starts the auto-train job) and waits for the champions."""
    t0 = time.monotonic()
    for model in models:
        data = generate(rows, model.kind == "mixed")
        model.rows = data.drop(columns="label")
        gateway.post("/api/datasets", json={"name": model.name, **schema(model.kind == "mixed")}).raise_for_status()
        reply = gateway.post(
            f"/api/datasets/{model.name}/versions",
            content=data.to_csv(index=False).encode(),
            headers={"content-type": "text/csv"},
        )
        reply.raise_for_status()
        if reply.json()["row_count"] != rows:
            raise RuntimeError(f"{model.name}: stored {reply.json()['row_count']} of {rows} rows")
    for model in models:
        deadline = time.monotonic() + timeout_s
        while True:
            jobs = gateway.get("/api/training/jobs", params={"dataset": model.name}).json().get("jobs", [])
            if jobs and jobs[0]["status"] in ("FAILED", "CANCELED"):
                raise RuntimeError(f"{model.name}: the training job {jobs[0]['status']}: {jobs[0].get('error')}")
            champion = None
            if jobs and jobs[0]["status"] == "COMPLETED":
                champion = gateway.get(f"/api/models/{model.name}").json()["aliases"].get("champion")
            if champion is not None:
                model.version, model.trained_s = champion, time.monotonic() - t0
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{model.name}: no champion within {timeout_s:.0f} s of the upload")
            time.sleep(0.2)
        version = gateway.get(f"/api/models/{model.name}/versions/{model.version}").json()
        artifact = gateway.get(f"/api/models/{model.name}/versions/{model.version}/artifact")
        artifact.raise_for_status()
        model.pipeline = modelfiles.load(artifact.content, version["artifact"]["sha256"])


def predict_key(gateway: httpx.Client) -> str:
    """A key for the gateway targets, as a high-volume client would hold: the predict role, with
    the highest rate a key may have (the admin key's 100 calls a second would refuse the load)."""
    reply = gateway.post("/api/keys", json={"name": "bench-inference", "roles": ["predict"], "rate": KEY_RATE})
    return str(reply.raise_for_status().json()["key"])


# request bodies and what the answers say


def oip_inputs(rows: pd.DataFrame) -> list[dict[str, Any]]:
    inputs = []
    for column in rows.columns:
        numeric = pd.api.types.is_numeric_dtype(rows[column])
        inputs.append(
            {
                "name": column,
                "shape": [len(rows)],
                "datatype": "FP64" if numeric else "BYTES",
                "data": rows[column].tolist(),
            }
        )
    return inputs


def oip_body(rows: pd.DataFrame) -> dict[str, Any]:
    return {"inputs": oip_inputs(rows), "outputs": [{"name": "predict"}]}


def mlserver_body(rows: pd.DataFrame) -> dict[str, Any]:
    return {"parameters": {"content_type": "pd"}, "inputs": oip_inputs(rows), "outputs": [{"name": "predict"}]}


def json_body(rows: pd.DataFrame) -> dict[str, Any]:
    return {"records": rows.to_dict(orient="records")}


def oip_predictions(answer: dict[str, Any]) -> list[Any]:
    (out,) = [o for o in answer["outputs"] if o["name"] == "predict"]
    return list(np.asarray(out["data"]).ravel())


def oip_runtime(answer: dict[str, Any]) -> str | None:
    return (answer.get("parameters") or {}).get("runtime")


def targets(stack: Stack, mlserver: MLServer, model: Model, alt: str | None, predict: str) -> list[Target]:
    """`alt`: what the second inference app's settings are, when there is one; `predict`: the
    key the gateway targets send."""
    inference, gateway = stack.app("inference").app_port, stack.app("gateway").app_port
    app, key = stack.app_headers(), {"authorization": f"Bearer {predict}"}
    v2 = f"/v2/models/{model.name}/infer"
    found = [Target("direct", "inference app direct, OIP", inference, v2, oip_body, oip_predictions, oip_runtime, app)]
    if alt is not None:
        port = stack.app("inferencealt").app_port
        found.append(
            Target("alt", f"inference app direct, OIP, {alt}", port, v2, oip_body, oip_predictions, oip_runtime, app)
        )
    mlserver_v2 = f"/v2/models/{model.kind}"
    found += [
        Target("gateway", "gateway, OIP", gateway, v2, oip_body, oip_predictions, oip_runtime, key),
        Target(
            "json",
            "gateway, JSON predict (+proba)",
            gateway,
            f"/api/models/{model.name}/predict",
            json_body,
            lambda answer: answer["predictions"],
            lambda answer: answer.get("runtime"),
            key,
        ),
        Target(
            "mlserver",
            "MLServer direct, batching off",
            mlserver.port,
            f"{mlserver_v2}/infer",
            mlserver_body,
            oip_predictions,
            lambda _: MLSERVER_RUNTIME,
        ),
        Target(
            "mlserver-batched",
            "MLServer direct, adaptive batching",
            mlserver.port,
            f"{mlserver_v2}-batched/infer",
            mlserver_body,
            oip_predictions,
            lambda _: MLSERVER_RUNTIME,
        ),
    ]
    return found


def verify(model: Model, found: list[Target]) -> dict[str, str]:
    """Every target's predictions on the same rows, against the pipeline in this process; what
    each target says predicted (its runtime; "unknown" when its answers do not say)."""
    rows = model.rows.iloc[:CHECK_ROWS]
    expected = [str(v) for v in model.pipeline.predict(rows)]
    runtimes = {}
    for target in found:
        for chunk in (rows, rows.iloc[:1]):
            url = f"http://127.0.0.1:{target.port}{target.path}"
            reply = httpx.post(url, json=target.body(chunk), timeout=60, headers=target.headers)
            if reply.status_code != 200:
                raise RuntimeError(f"{target.label}: HTTP {reply.status_code}: {reply.text[:500]}")
            got = [str(v) for v in target.predictions(reply.json())]
            if got != expected[: len(chunk)]:
                wrong = [i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b]
                raise RuntimeError(
                    f"{target.label}: {len(wrong)} of {len(chunk)} predictions differ from the pipeline's "
                    f"(rows {wrong[:10]})"
                )
            runtimes[target.key] = target.runtime(reply.json()) or "unknown"
    print(
        f"check: {model.kind} v{model.version}: the {len(found)} targets' predictions match the pipeline's "
        f"(and each other's) on the same {len(rows)} rows and on 1 row; served by: "
        + ", ".join(f"{t.label} {runtimes[t.key]}" for t in found),
        flush=True,
    )
    return runtimes

"""Inference latency and throughput, against MLServer serving the same fitted pipeline.

    .venv/bin/python -m bench.inference [--quick] [--seconds 3] [--concurrency 1,8,32] [--mixed]

On a freshly started isolated stack: two generated classification sets go through the gateway
into datasets whose schemas were declared ("numeric": 10 number columns from scikit-learn's
make_classification, fixed seed; "mixed": the same plus a category column), and the commits'
auto-train jobs register a champion of each (the default estimator, gradient_boosting).

The reference: MLServer 1.7 with its scikit-learn runtime (mlserver_sklearn.SKLearnModel),
serving the very pipeline the registry holds: its skops file is downloaded through the gateway,
loaded as the inference service loads it (sha256 and trusted types checked), and dumped with
joblib into a model folder of MLServer's. MLServer runs from a venv of its own
(.data/bench/mlserver-venv, made on first use from bench/mlserver-requirements.txt, whose
scikit-learn, numpy and pandas are the project's), on free 127.0.0.1 ports, with its defaults
(one inference worker process beside the HTTP server), adaptive batching off, and again as a
second model with it on (max_batch_size 32, max_batch_time 2 ms). Requests to it carry one
input per column and parameters.content_type "pd", so its pandas codec hands the pipeline the
same named-column DataFrame ours gets. Before anything is timed, each target's predictions on
the same 500 rows are checked equal to each other and to the pipeline in this process; the run
stops if they are not.

Measured, with the same rows and bodies for every target, from one client process on this
machine (a small keep-alive HTTP/1.1 client on uvloop, so that the client costs little):
  - latency: p50 and p99 of single-row requests sent one after another on one connection;
  - throughput: requests/s and rows/s with 1, 8 and 32 requests in flight (one connection
    each), each for a few seconds, with requests of 1 row and of 100 rows.
Targets: our Open Inference Protocol (OIP v2) infer on the inference app's own port; the same
through the gateway (the public path: gateway -> its sidecar -> inference's sidecar -> app);
our JSON predict through the gateway; MLServer's OIP v2 infer on its own port. Each is warmed up
first. Ratios are against MLServer with adaptive batching off.

Fair and unfair: the OIP requests ask for the `predict` output only, as MLServer's runtime gives
by default; the JSON predict also computes class probabilities (it always does). Both servers
hold the model in memory (ours resolves the champion alias once, then serves it from memory).
MLServer direct has no sidecar at all, so against the gateway rows it measures what the public
path (two more processes, two sidecars) costs, not only the serving code; "inference app
direct" is the like-for-like row. MLServer predicts in a worker process of its own (its default,
parallel_workers 1), ours in a thread of the app's process. Client, servers and sidecars share
the machine's cores (stated in the output): when they are saturated, a row measures CPU cost
per request more than anything else. No thresholds: figures and ratios.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvloop
import yaml

from bench.common import CLASSES, classification, classification_schema, infrastructure, running
from bench.httpload import BATCH_ROWS, Result, Target, measure
from bench.mlserver import MLSERVER_BATCH, MLServer, mlserver_venv, mlserver_version
from scripts.runfile import free_app_ports, write_config
from scripts.stack import Stack
from services.common import modelfiles
from services.inference.settings import Settings as InferenceSettings

COLORS = np.array(["red", "green", "blue", "cyan"])
CHECK_ROWS = 500


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


# the stack, the datasets and their champions


@dataclass
class Model:
    kind: str  # numeric or mixed
    name: str
    version: int = 0
    pipeline: Any = None
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # features only
    trained_s: float = 0.0


def isolated_stack(workdir: Path, run_id: str, batching: bool | None) -> Stack:
    """The isolated stack; with `batching` given, a second inference app (app id
    'inferencealt-<run_id>', not behind the gateway) whose DAPRML_BATCHING is that value."""
    stack = Stack.isolated(workdir, run_id)
    if batching is None:
        return stack
    spec = yaml.safe_load(stack.run_file.read_text())
    base = next(a for a in spec["apps"] if a["appID"] == f"inference-{run_id}")
    alt = dict(base, appID=f"inferencealt-{run_id}", **free_app_ports())
    alt.update(env={"DAPRML_BATCHING": "true" if batching else "false"})
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


# request bodies


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


def targets(stack: Stack, mlserver: MLServer, model: Model, alt: str | None) -> list[Target]:
    inference, gateway = stack.app("inference").app_port, stack.app("gateway").app_port
    app, key = stack.app_headers(), {"authorization": f"Bearer {stack.admin_key}"}
    v2 = f"/v2/models/{model.name}/infer"
    direct = "inference app direct, OIP" + (f" ({alt})" if alt else "")
    found = [Target(direct, inference, v2, oip_body, oip_predictions, headers=app)]
    if alt is not None:
        other = stack.app("inferencealt").app_port
        flipped = "batching on" if "off" in alt else "batching off"
        found.append(
            Target(f"inference app direct, OIP ({flipped})", other, v2, oip_body, oip_predictions, headers=app)
        )
    found += [
        Target("gateway, OIP", gateway, v2, oip_body, oip_predictions, headers=key),
        Target(
            "gateway, JSON predict (+proba)",
            gateway,
            f"/api/models/{model.name}/predict",
            json_body,
            lambda answer: answer["predictions"],
            headers=key,
        ),
        Target(
            "MLServer direct, OIP",
            mlserver.port,
            f"/v2/models/{model.kind}/infer",
            mlserver_body,
            oip_predictions,
            reference=True,
        ),
        Target(
            "MLServer direct, adaptive batching",
            mlserver.port,
            f"/v2/models/{model.kind}-batched/infer",
            mlserver_body,
            oip_predictions,
        ),
    ]
    return found


def verify(model: Model, found: list[Target]) -> None:
    """Every target's predictions on the same rows, against the pipeline in this process."""
    rows = model.rows.iloc[:CHECK_ROWS]
    expected = [str(v) for v in model.pipeline.predict(rows)]
    for target in found:
        for chunk in (rows, rows.iloc[:1]):
            url = f"http://127.0.0.1:{target.port}{target.path}"
            reply = httpx.post(url, json=target.body(chunk), timeout=60, headers=target.headers)
            if reply.status_code != 200:
                raise RuntimeError(f"{target.label}: HTTP {reply.status_code}: {reply.text[:500]}")
            got = [str(v) for v in target.predictions(reply.json())]
            if got != expected[: len(chunk)]:
                wrong = sum(a != b for a, b in zip(got, expected, strict=False))
                raise RuntimeError(f"{target.label}: {wrong} of {len(chunk)} predictions differ from the pipeline's")
    print(
        f"check: {model.kind} v{model.version}: the {len(found)} targets' predictions match the pipeline's "
        f"(and each other's) on the same {len(rows)} rows and on 1 row",
        flush=True,
    )


# the report


def report(model: Model, results: list[Result], args: argparse.Namespace) -> None:
    ref = next(r for r in results if r.target.reference)
    cs = args.concurrency
    width = max(len(r.target.label) for r in results)
    head1 = " ".join(f"{'c=' + str(c):>7}" for c in cs)
    print(
        f"\n{model.kind} model (v{model.version}): latency of 1-row requests, one at a time, and throughput "
        f"at c requests in flight"
    )
    print(
        f"{'target':<{width}} | {'p50 ms':>7} {'p99 ms':>7} | 1 row: req/s {head1} | {BATCH_ROWS} rows: rows/s {head1}"
    )
    for r in results:
        small = " ".join(f"{r.cells[(1, c)].rps:>7.0f}" for c in cs)
        big = " ".join(f"{r.cells[(BATCH_ROWS, c)].rps * BATCH_ROWS:>7.0f}" for c in cs)
        print(f"{r.target.label:<{width}} | {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} | {'':12}{small} | {'':14}{big}")
    print("ratios to MLServer direct (batching off): throughput x, latency x (above 1: more throughput, more latency)")
    for r in results:
        if r is ref:
            continue
        small = " ".join(f"{r.cells[(1, c)].rps / ref.cells[(1, c)].rps:>6.2f}x" for c in cs)
        big = " ".join(f"{r.cells[(BATCH_ROWS, c)].rps / ref.cells[(BATCH_ROWS, c)].rps:>6.2f}x" for c in cs)
        p50, p99 = r.p50_ms / ref.p50_ms, r.p99_ms / ref.p99_ms
        print(f"{r.target.label:<{width}} | {p50:>6.2f}x {p99:>6.2f}x | {'':12}{small} | {'':14}{big}")
    top = max(cs)
    print()
    for r in results:
        if r is ref:
            continue
        a = r.cells[(1, top)].rps / ref.cells[(1, top)].rps
        b = r.cells[(BATCH_ROWS, top)].rps / ref.cells[(BATCH_ROWS, top)].rps
        print(
            f"{r.target.label}: {a:.2f}x MLServer's throughput at c={top} with 1-row requests, "
            f"{b:.2f}x with {BATCH_ROWS}-row ones; p50 latency {r.p50_ms / ref.p50_ms:.2f}x"
        )
    errors = [
        f"{r.target.label} {rows} rows c={c}: " + ", ".join(f"HTTP {k} x{n}" for k, n in sorted(cell.errors.items()))
        for r in results
        for (rows, c), cell in r.cells.items()
        if cell.errors
    ] + [f"{r.target.label} latency: {r.latency_errors}" for r in results if r.latency_errors]
    print("non-200 answers: " + ("; ".join(errors) if errors else "none"))
    busy = [cell.machine_busy for r in results for cell in r.cells.values()]
    client = [cell.client_cpu for r in results for cell in r.cells.values()]
    print(
        f"machine CPU busy during the throughput cells: {min(busy):.0%}-{max(busy):.0%} of {os.cpu_count()} cores; "
        f"the client process used {min(client):.0%}-{max(client):.0%} of one core"
    )


def run(
    workdir: Path, venv: Path, alt: bool | None, label: str | None, args: argparse.Namespace
) -> list[tuple[Model, list[Result]]]:
    """The stack and its champions, MLServer serving the same pipelines, every target checked
    against the pipeline, then the timed models measured; both servers stopped at the end."""
    run_id = uuid.uuid4().hex[:8]
    outcome: list[tuple[Model, list[Result]]] = []
    with running(isolated_stack(workdir / "stack", run_id, alt)) as stack:
        mlserver: MLServer | None = None
        try:
            with stack.gateway(120) as gateway:
                models = [Model("numeric", f"bench-numeric-{run_id}"), Model("mixed", f"bench-mixed-{run_id}")]
                train(gateway, models, args.rows, args.timeout)
            for model in models:
                print(f"trained: {model.name} v{model.version} champion {model.trained_s:.1f} s after the uploads")
            mlserver = MLServer(venv, workdir / "mlserver", {m.kind: (m.pipeline, m.version) for m in models})
            mlserver.start()
            timed = models if args.mixed else models[:1]
            for model in models:
                verify(model, targets(stack, mlserver, model, label))
            for model in timed:
                found = targets(stack, mlserver, model, label)
                print(f"measuring {model.kind}: {len(found)} targets", flush=True)
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    outcome.append((model, runner.run(measure(found, model.rows, args))))
        finally:
            if mlserver is not None:
                mlserver.stop()
    return outcome


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: 0.7 s cells, c=1 and 32, fewer requests")
    parser.add_argument("--rows", type=int, default=3000, help="rows of each dataset")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput cell")
    parser.add_argument("--concurrency", default="1,8,32", help="requests in flight, comma-separated")
    parser.add_argument("--latency-requests", type=int, default=500, help="sequential 1-row requests timed, at most")
    parser.add_argument("--latency-s", type=float, default=6.0, help="seconds of latency requests, at most")
    parser.add_argument("--mixed", action="store_true", help="time the model with a category column too")
    parser.add_argument("--timeout", type=float, default=180, help="seconds from the uploads to the champions")
    args = parser.parse_args(argv)
    args.warm_s = 0.5
    if args.quick:
        args.seconds, args.concurrency, args.latency_requests, args.latency_s = 0.7, "1,32", 200, 1.5
        args.warm_s = 0.3
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    t_start, load_start = time.monotonic(), os.getloadavg()[0]

    batching_field = "batching" in InferenceSettings.model_fields
    default_batching = InferenceSettings.model_fields["batching"].default if batching_field else None
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; client, servers and sidecars "
        f"share them. Hops: inference app direct = client -> app (predicting in a thread); gateway = client -> "
        f"gateway -> its daprd -> inference's daprd -> app; MLServer direct = client -> MLServer's HTTP server "
        f"-> its inference worker process",
        flush=True,
    )
    if not batching_field:
        print("inference batching: skipped, services/inference/settings.py has no `batching` setting (yet)")
    venv = mlserver_venv()
    alt = None if not batching_field else not bool(default_batching)
    label = None if alt is None else ("batching on" if default_batching else "batching off")
    with infrastructure(), tempfile.TemporaryDirectory(prefix="daprml-bench-inference-") as tmp:
        outcome = run(Path(tmp), venv, alt, label, args)
    for model, results in outcome:
        report(model, results, args)
    counts = [r.latency_count for _, results in outcome for r in results]
    print(
        f"\n{args.rows} rows per dataset; throughput cells of {args.seconds:g} s; latency from "
        f"{min(counts, default=0)}-{max(counts, default=0)} requests per target; MLServer {mlserver_version()} "
        f"(adaptive batching: {MLSERVER_BATCH}); load average at the start {load_start:.2f}, at the end "
        f"{os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); whole run {time.monotonic() - t_start:.0f} s"
    )
    if max(load_start, os.getloadavg()[0]) > (os.cpu_count() or 1):
        print("NOTE: the load average was above the core count: something else was running; figures are noisy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Inference latency and throughput, against MLServer serving the same fitted pipeline.

    .venv/bin/python bench/inference.py [--quick] [--seconds 3] [--concurrency 1,8,32] [--mixed]

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
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import uvloop
from sklearn.datasets import make_classification
from train import sidecars

from scripts import infra
from scripts.proc import DATA, ROOT, free_port, wait_until
from scripts.stack import Stack, free_app_ports, write_config
from services.common import modelfiles
from services.inference.settings import Settings as InferenceSettings

FEATURES = 10
CLASSES = np.array(["alpha", "beta", "gamma"])
COLORS = np.array(["red", "green", "blue", "cyan"])
REQUIREMENTS = ROOT / "bench" / "mlserver-requirements.txt"
VENV = DATA / "bench" / "mlserver-venv"
CHECK_ROWS = 500
BATCH_ROWS = 100
MLSERVER_BATCH = {"max_batch_size": 32, "max_batch_time": 0.002}


def schema(mixed: bool) -> dict[str, Any]:
    columns = [{"name": f"x{i}", "type": "number"} for i in range(FEATURES)]
    if mixed:
        columns.append({"name": "color", "type": "category"})
    return {"task": "classification", "target": "label", "columns": columns + [{"name": "label", "type": "category"}]}


def generate(rows: int, mixed: bool) -> pd.DataFrame:
    X, y = make_classification(
        n_samples=rows, n_features=FEATURES, n_informative=6, n_redundant=2, n_classes=len(CLASSES), random_state=0
    )
    frame = pd.DataFrame({f"x{i}": X[:, i].round(6) for i in range(FEATURES)})
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
    import yaml

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


# MLServer


def mlserver_venv() -> Path:
    """MLServer's own venv, made (or remade, when the requirements changed) from the pinned file."""
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return VENV
    t0 = time.monotonic()
    print(f"mlserver: making its venv {VENV.relative_to(ROOT)} from {REQUIREMENTS.relative_to(ROOT)}", flush=True)
    # The project's interpreter (Python 3.11): the pickle is loaded by the same Python.
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest)
    print(f"mlserver: venv ready in {time.monotonic() - t0:.0f} s", flush=True)
    return VENV


class MLServer:
    """`mlserver start` on a model folder, in its own process group; stopped with the group."""

    def __init__(self, venv: Path, folder: Path, models: list[Model]):
        self.venv, self.folder = venv, folder
        self.port, grpc, metrics = free_port(), free_port(), free_port()
        folder.mkdir(parents=True)
        settings = {"host": "127.0.0.1", "http_port": self.port, "grpc_port": grpc, "metrics_port": metrics}
        (folder / "settings.json").write_text(json.dumps(settings))
        for model in models:
            for name, extra in ((model.kind, {}), (f"{model.kind}-batched", MLSERVER_BATCH)):
                (folder / name).mkdir()
                joblib.dump(model.pipeline, folder / name / "model.joblib")
                model_settings = {
                    "name": name,
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": str(model.version)},
                    **extra,
                }
                (folder / name / "model-settings.json").write_text(json.dumps(model_settings))
        self.names = [p.name for p in folder.iterdir() if p.is_dir()]
        self.log = folder.parent / "mlserver.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> None:
        t0 = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "mlserver"), "start", str(self.folder)],
                cwd=self.folder.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                return True
            try:
                return all(
                    httpx.get(f"{self.url}/v2/models/{n}/ready", timeout=2).status_code == 200 for n in self.names
                )
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s, interval_s=0.3)
        if self.proc.poll() is not None or not ready():
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"MLServer did not become ready (log {self.log}):\n{tail}")
        print(f"mlserver: {len(self.names)} models ready in {time.monotonic() - t0:.1f} s on {self.url}", flush=True)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass
        print("mlserver: stopped")


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


@dataclass
class Target:
    label: str
    port: int
    path: str
    body: Any  # rows -> the JSON body
    predictions: Any  # the answer -> the predicted labels
    reference: bool = False
    headers: dict[str, str] = field(default_factory=dict)  # the key (gateway) or app token (the app itself)


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


# the client


class Connection:
    """One keep-alive HTTP/1.1 connection: pre-encoded POSTs, the status and body read back."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(request)
        status = int((await self.reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            body = b"".join(parts)
        else:
            body = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def encoded(target: Target, chunks: list[pd.DataFrame]) -> list[bytes]:
    out = []
    for chunk in chunks:
        body = json.dumps(target.body(chunk)).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
        head = (
            f"POST {target.path} HTTP/1.1\r\nhost: 127.0.0.1:{target.port}\r\ncontent-type: application/json\r\n"
            f"{extra}content-length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


def cpu_busy() -> tuple[float, float]:
    """The machine's busy and total jiffies so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Cell:
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)  # status -> count, for answers other than 200
    seconds: float = 0.0
    rows_per_request: int = 1
    client_cpu: float = 0.0  # of one core
    machine_busy: float = 0.0  # of all cores

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def latency(port: int, requests: list[bytes], count: int, max_s: float) -> tuple[list[float], int]:
    """`count` requests one after another, or as many as fit in max_s."""
    conn, times, errors = Connection(port), [], 0
    deadline = time.perf_counter() + max_s
    try:
        for i in range(count):
            t0 = time.perf_counter()
            status, _ = await conn.post(requests[i % len(requests)])
            times.append(time.perf_counter() - t0)
            errors += status != 200
            if t0 > deadline:
                break
    finally:
        conn.close()
    return times, errors


async def throughput(port: int, requests: list[bytes], concurrency: int, seconds: float, rows: int) -> Cell:
    conns = [Connection(port) for _ in range(concurrency)]
    cell = Cell(rows_per_request=rows)
    try:
        await asyncio.gather(*(c.post(requests[0]) for c in conns))  # connections open and warm
        deadline = time.perf_counter() + seconds

        async def worker(n: int, conn: Connection) -> None:
            i = n
            while time.perf_counter() < deadline:
                status, _ = await conn.post(requests[i % len(requests)])
                cell.requests += 1
                if status != 200:
                    cell.errors[status] = cell.errors.get(status, 0) + 1
                i += concurrency

        busy0, cpu0, t0 = cpu_busy(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(n, c) for n, c in enumerate(conns)))
        cell.seconds = time.perf_counter() - t0
        busy1 = cpu_busy()
        cell.client_cpu = (time.process_time() - cpu0) / cell.seconds
        cell.machine_busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    finally:
        for c in conns:
            c.close()
    return cell


@dataclass
class Result:
    target: Target
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    latency_errors: int = 0
    latency_count: int = 0
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)  # (rows, concurrency) -> cell


async def measure(found: list[Target], model: Model, args: argparse.Namespace) -> list[Result]:
    singles = [model.rows.iloc[i : i + 1] for i in range(200)]
    batches = [model.rows.iloc[i : i + BATCH_ROWS] for i in range(0, 10 * BATCH_ROWS, BATCH_ROWS)]
    results = []
    for target in found:
        t0 = time.monotonic()
        small, big = encoded(target, singles), encoded(target, batches)
        # Warm-up: one-time costs (imports, first predictions, connection set-up) on every path.
        await latency(target.port, small, 30, 1.0)
        await throughput(target.port, small, max(args.concurrency), args.warm_s, 1)
        await throughput(target.port, big, max(args.concurrency), args.warm_s, BATCH_ROWS)
        result = Result(target)
        times, result.latency_errors = await latency(target.port, small, args.latency_requests, args.latency_s)
        result.latency_count = len(times)
        result.p50_ms, result.p99_ms = (float(v) * 1000 for v in np.percentile(times, [50, 99]))
        for rows, requests in ((1, small), (BATCH_ROWS, big)):
            for c in args.concurrency:
                result.cells[(rows, c)] = await throughput(target.port, requests, c, args.seconds, rows)
        results.append(result)
        print(f"  {target.label}: measured in {time.monotonic() - t0:.0f} s", flush=True)
    return results


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
    started = infra.up()
    run_id = uuid.uuid4().hex[:8]
    outcome: list[tuple[Model, list[Result]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="daprml-bench-inference-") as tmp:
            workdir = Path(tmp)
            alt = None if not batching_field else not bool(default_batching)
            stack = isolated_stack(workdir / "stack", run_id, alt)
            mlserver: MLServer | None = None
            stack.start()
            try:
                with stack.gateway(120) as gateway:
                    models = [Model("numeric", f"bench-numeric-{run_id}"), Model("mixed", f"bench-mixed-{run_id}")]
                    train(gateway, models, args.rows, args.timeout)
                for model in models:
                    print(f"trained: {model.name} v{model.version} champion {model.trained_s:.1f} s after the uploads")
                mlserver = MLServer(venv, workdir / "mlserver", models)
                mlserver.start()
                label = None if alt is None else ("batching on" if default_batching else "batching off")
                timed = models if args.mixed else models[:1]
                for model in models:
                    found = targets(stack, mlserver, model, label)
                    verify(model, found)
                for model in timed:
                    found = targets(stack, mlserver, model, label)
                    print(f"measuring {model.kind}: {len(found)} targets", flush=True)
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        outcome.append((model, runner.run(measure(found, model, args))))
            finally:
                if mlserver is not None:
                    mlserver.stop()
                stack.stop()
    finally:
        # Redis, placement and scheduler are shared: stopped only if this run started them and
        # no sidecar is left on them (as bench/train.py does).
        users = sidecars()
        if started and users:
            print(f"infra: left running ({', '.join(started)}): {len(users)} other sidecars use it")
        else:
            infra.down(started)
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


def mlserver_version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        if line.startswith("mlserver=="):
            return line.split("==")[1]
    return "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

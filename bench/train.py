"""Training time: from a dataset commit to the registered model, against fitting in one process.

    .venv/bin/python -m bench.train [--rows 10000,100000,1000000] [--timeout 600]

For each size, on a freshly started isolated stack: a generated classification set (10 number
columns from scikit-learn's make_classification, fixed seed, and a category label) goes through
the gateway (one request up to 100k rows, in parts beyond), into a dataset whose schema was
declared. The commit's event starts the auto-train job (the default estimator,
gradient_boosting); the clock runs from the commit's answer until GET /api/models/{name} lists
the version (polled every 50 ms once the job is registering). Before that the job is polled every
50 ms: the time it was seen in its "fitting" and "evaluating" stages (the rows read from
ingestion, the fit and evaluation in the worker process, the skops file and its card written
to the blob store) is fitting+evaluating; the rest of commit -> registered is orchestration and
waiting (the event, scheduling, the workflow's other steps, registration).

The reference: `fit_and_evaluate` (the same Parquet rows, schema, estimator, parameters and
seed as the job; frame, holdout split, Pipeline.fit, the same metrics) in this process, once
the stack is stopped. A small warm-up job (and a warm-up reference) first, so neither side
counts one-time costs (the worker process's spawn and imports). Peak RSS (VmHWM): the
training service's process (the listener on its port) and its child processes (the fitting
worker). No thresholds: figures, and the issue's target stated as met or not.
"""

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv

from bench.common import (
    CLASSES,
    FEATURES,
    children,
    classification,
    classification_schema,
    gateway_client,
    infrastructure,
    rss_mb,
    running,
    upload,
)
from bench.train_reference import Reference, Steps, reference, replay, sized
from scripts.proc import listener_pid
from scripts.stack import Stack
from services.common.contracts import DatasetSchema
from services.training.domain.pipeline import parquet

DATASET = classification_schema()
ONE_SHOT_MAX_ROWS = 100_000  # about 11 MB of CSV; the gateway takes 32 MiB in one request
WARMUP_ROWS = 2_000
LATER_STAGES = ("evaluating", "registering", "promoting", "done")


def generate(rows: int, path: Path) -> None:
    columns, y = classification(rows)
    pacsv.write_csv(pa.table(columns | {"label": CLASSES[y]}), str(path))


def commit(client: httpx.Client, name: str, path: Path, rows: int, part_bytes: int, concurrency: int) -> dict:
    """Creates the dataset and uploads the CSV; returns the commit's answer."""
    client.post("/api/datasets", json={"name": name, **DATASET}).raise_for_status()
    if rows <= ONE_SHOT_MAX_ROWS:
        reply = client.post(
            f"/api/datasets/{name}/versions", content=path.read_bytes(), headers={"content-type": "text/csv"}
        )
        reply.raise_for_status()
        return reply.json()
    return upload(client, name, path, part_bytes, concurrency)[0]


@dataclass
class Run:
    """One job followed from its dataset's commit."""

    committed_at: float = 0.0  # time.monotonic() when the commit answered
    committed_wall: float = 0.0  # time.time() then
    upload_s: float = 0.0
    job: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)  # stage -> first seen, seconds after the commit
    registered_s: float | None = None  # the version listed, seconds after the commit
    registry_s: float | None = None  # the version's created_at, by the registry's clock
    version: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    polls: int = 0

    @property
    def fit_eval_s(self) -> float | None:
        """From the job first seen fitting to the first of: the job seen in a later stage, the
        version's registration (a fast "registering" stage can fall between two polls)."""
        start = self.seen.get("fitting")
        after = [self.seen[s] for s in LATER_STAGES[1:] if s in self.seen]
        if self.registry_s is not None:
            after.append(self.registry_s)
        return min(after) - start if start is not None and after else None


def follow(client: httpx.Client, name: str, run: Run, timeout_s: float, poll_s: float = 0.05) -> Run:
    """Polls the job (every 50 ms) until it is registering, then the model (every 50 ms)
    until it lists the version; a failed job or the time running out ends it too."""
    deadline = run.committed_at + timeout_s
    job_id: str | None = None
    while time.monotonic() < deadline:
        now = time.monotonic() - run.committed_at
        run.polls += 1
        try:
            if job_id is None:
                jobs = client.get("/api/training/jobs", params={"dataset": name}).json().get("jobs", [])
                job = jobs[0] if jobs else None
            else:
                job = client.get(f"/api/training/jobs/{job_id}").json()
        except (httpx.HTTPError, ValueError):
            job = None  # a service restarting, say: ask again
        if job is not None:
            job_id, run.job = job["id"], job
            if job.get("stage"):
                run.seen.setdefault(job["stage"], now)
            if job["status"] == "FAILED":
                run.seen.setdefault("FAILED", now)
                run.failure = f"the job failed at stage {job.get('stage')}: {job.get('error')}"
                return run
            if job.get("stage") in LATER_STAGES[1:] or job["status"] == "COMPLETED":
                break
        time.sleep(poll_s)
    while time.monotonic() < deadline:
        reply = client.get(f"/api/models/{name}")
        run.polls += 1
        if reply.status_code == 200 and reply.json()["versions"]:
            run.registered_s = time.monotonic() - run.committed_at
            run.version = reply.json()["versions"][0]
            created = datetime.fromisoformat(run.version["created_at"]).timestamp()
            run.registry_s = created - run.committed_wall
            return run
        time.sleep(0.05)
    stage = run.job.get("stage") or run.job.get("status") or "no job seen"
    run.failure = f"no model version within {timeout_s:.0f} s of the commit (the job was at: {stage})"
    return run


@dataclass
class Result:
    rows: int
    run: Run
    rss: dict[str, float] = field(default_factory=dict)
    ref: Reference | None = None
    ref_failure: str | None = None
    steps: Steps | None = None


def measure(rows: int, workdir: Path, warmup: Path, args: argparse.Namespace, pool: ProcessPoolExecutor) -> Result:
    csv_path = workdir / f"data-{rows}.csv"
    generate(rows, csv_path)
    run_id = uuid.uuid4().hex[:8]
    result = Result(rows, Run())
    data: bytes | None = None
    manifest: dict[str, Any] = {}
    with running(Stack.isolated(workdir / f"stack-{rows}", run_id)) as stack:
        with gateway_client(stack.gateway_url, stack.admin_key, args.concurrency + 2) as client:
            warm = Run()
            commit(client, f"warm-{run_id}", warmup, WARMUP_ROWS, args.part_bytes, args.concurrency)
            warm.committed_at, warm.committed_wall = time.monotonic(), time.time()
            follow(client, f"warm-{run_id}", warm, 120)
            if warm.failure:
                raise RuntimeError(f"the warm-up job: {warm.failure}")
            service = listener_pid(stack.app("training").app_port)
            if service is None:
                raise RuntimeError("the training service's process was not found")
            result.rss["service idle"] = rss_mb(service, "VmRSS")
            name = f"bench-{run_id}"
            t0 = time.monotonic()
            committed = commit(client, name, csv_path, rows, args.part_bytes, args.concurrency)
            run = result.run
            run.committed_at, run.committed_wall = time.monotonic(), time.time()
            run.upload_s = run.committed_at - t0
            if committed["row_count"] != rows:
                run.failure = f"stored {committed['row_count']} of {rows} rows"
                return result
            follow(client, name, run, args.timeout, args.poll_s)
            result.rss["service"] = rss_mb(service)
            for pid, kind in children(service):
                result.rss[f"{kind} {pid}"] = rss_mb(pid)
            # The rows the job read (the version as ingestion serves it), for the reference,
            # and the fit activity's I/O timed again.
            version = committed["version"]
            manifest = client.get(f"/api/datasets/{name}/versions/{version}").json()
            if run.registered_s is not None:
                registered = client.get(f"/api/models/{name}/versions/{run.version['version']}").json()
                key = registered["artifact"]["key"]
                keys = [key, key.removesuffix(".skops") + ".card.json"]
                result.steps = asyncio.run(replay(stack, name, version, keys, pool))
                data = result.steps.rows
            else:
                reply = client.get(f"/api/datasets/{name}/versions/{version}/data", params={"format": "parquet"})
                reply.raise_for_status()
                data = reply.content
    try:
        job = result.run.job
        assert data is not None
        result.ref = reference(
            data, manifest["schema"], job.get("estimator", "gradient_boosting"), job.get("params", {})
        )
    except Exception as exc:  # reported with the size, not raised: the other sizes still run
        traceback.print_exc()
        result.ref_failure = f"{type(exc).__name__}: {exc}"
    return result


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[Result]) -> None:
    print(
        f"\n{'rows':>9} | {'commit->registered s':>20} {'fit+eval s':>10} {'orchestration s':>15} | "
        f"{'bare s':>7} | {'ratio':>5} {'overhead s':>10} | {'target: <= 10% + 0.5 s':<24} | "
        f"{'RSS MB service idle/peak':>24} {'worker peak':>11}"
    )
    for r in results:
        run, ref = r.run, r.ref
        workers = [v for k, v in r.rss.items() if k.startswith("worker")]
        rss = f"{r.rss.get('service idle', float('nan')):.0f} / {r.rss.get('service', float('nan')):.0f}"
        if run.registered_s is None:
            print(
                f"{r.rows:>9,} | {'-':>20} {'-':>10} {'-':>15} | {fmt(ref and ref.total_s):>7} | "
                f"{'-':>5} {'-':>10} | {'not measured':<24} | {rss:>24} {fmt(max(workers, default=None), '.0f'):>11}"
            )
            continue
        fit_eval = run.fit_eval_s
        orchestration = run.registered_s - fit_eval if fit_eval is not None else None
        target = "-"
        ratio = overhead = None
        if ref is not None:
            ratio, overhead = run.registered_s / ref.total_s, run.registered_s - ref.total_s
            allowed = 0.1 * ref.total_s + 0.5
            target = f"{'met' if overhead <= allowed else 'missed'} (allowed {allowed:.2f} s)"
        print(
            f"{r.rows:>9,} | {run.registered_s:>20.2f} {fmt(fit_eval):>10} {fmt(orchestration):>15} | "
            f"{fmt(ref and ref.total_s):>7} | {fmt(ratio):>5} {fmt(overhead):>10} | {target:<24} | "
            f"{rss:>24} {fmt(max(workers, default=None), '.0f'):>11}"
        )
    print()
    for r in results:
        run, ref = r.run, r.ref
        stages = ", ".join(f"{stage} {at:.2f}" for stage, at in run.seen.items())
        print(f"{r.rows:,} rows: upload+commit {run.upload_s:.2f} s; stages first seen (s after the commit): {stages}")
        if run.registry_s is not None:
            print(f"  the registry's created_at: {run.registry_s:.2f} s after the commit; {run.polls} polls")
        if run.failure:
            print(f"  FAILED: {run.failure}")
        if ref is not None:
            prep = ref.total_s - ref.fit_s - ref.eval_s
            print(
                f"  bare: {ref.total_s:.2f} s = Parquet->frame+split {prep:.2f} + fit {ref.fit_s:.2f} + "
                f"evaluate {ref.eval_s:.2f}; the worker also writes the skops file: "
                f"+{ref.serialize_s:.2f} s"
            )
            job_metrics = run.version.get("metrics", {})
            if job_metrics:
                same = all(abs(job_metrics[k] - ref.metrics[k]) < 1e-9 for k in ("accuracy", "f1_macro"))
                print(
                    f"  accuracy: job {job_metrics['accuracy']:.4f}, bare {ref.metrics['accuracy']:.4f} "
                    f"({'the same model' if same else 'DIFFERENT'})"
                )
        if r.steps is not None and ref is not None and run.fit_eval_s is not None:
            st = r.steps
            known = st.rows_s + ref.total_s + ref.serialize_s + st.handoff_s + st.blobs_s
            print(
                f"  fit activity {run.fit_eval_s:.2f} s ~ rows from ingestion {st.rows_s:.2f} "
                f"({len(st.rows) / 1e6:.1f} MB Parquet) + bare {ref.total_s:.2f} + skops file "
                f"{ref.serialize_s:.2f} + to and from the worker {st.handoff_s:.2f} + blob writes {st.blobs_s:.2f} "
                f"({' + '.join(f'{mb:.1f}' for mb in st.blob_mb)} MB) = {known:.2f}; "
                f"left: {run.fit_eval_s - known:+.2f}"
            )
        if r.ref_failure:
            print(f"  bare reference not measured: {r.ref_failure}")
        others = {k: v for k, v in r.rss.items() if not k.startswith("service")}
        if others:
            listed = ", ".join(f"{k} {v:.0f}" for k, v in others.items())
            print(f"  children of the training service, peak RSS MB: {listed}")


def measure_sizes(sizes: list[int], args: argparse.Namespace) -> list[Result]:
    """Each size on a fresh stack, after a warm-up reference; a size that fails is reported
    (with its traceback on stderr) and the others still run."""
    results: list[Result] = []
    # A spawned worker, as training's Compute has: to time handing rows to it and results back.
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(sized, b"", 0).result()
    try:
        with tempfile.TemporaryDirectory(prefix="daprml-bench-train-") as tmp:
            workdir = Path(tmp)
            warmup = workdir / "warmup.csv"
            generate(WARMUP_ROWS, warmup)
            warm_schema = DatasetSchema.model_validate(DATASET)
            table = pacsv.read_csv(warmup)
            reference(parquet(table.to_pandas()), warm_schema.model_dump(), "gradient_boosting", {})
            for rows in sizes:
                t0 = time.monotonic()
                try:
                    results.append(measure(rows, workdir, warmup, args, pool))
                except Exception as exc:
                    traceback.print_exc()
                    print(f"{rows:,} rows: not measured: {type(exc).__name__}: {exc}")
                    continue
                load = os.getloadavg()[0]
                print(f"{rows:,} rows: done in {time.monotonic() - t0:.0f} s (load average {load:.2f})", flush=True)
    finally:
        pool.shutdown()
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--timeout", type=float, default=600, help="seconds from a commit to its model, at most")
    parser.add_argument("--part-mb", type=float, default=4, help="part size of uploads over 100k rows")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight at once")
    parser.add_argument("--poll-s", type=float, default=0.05, help="how often the job is asked for its stage")
    args = parser.parse_args(argv)
    args.part_bytes = int(args.part_mb * 1024 * 1024)
    sizes = [int(n) for n in args.rows.split(",")]
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {FEATURES} number columns "
        f"and a 3-class label; estimator gradient_boosting (defaults); each size on a fresh stack"
    )
    with infrastructure():
        results = measure_sizes(sizes, args)
    report(results)
    print(
        "\ncommit->registered: from the commit's answer until GET /api/models/{name} lists the version. fit+eval: "
        "the job seen in its fitting and evaluating stages (polled every 50 ms: +-0.05 s), which includes\n"
        "reading the rows from ingestion through the sidecars and writing the model and its card to the blob store. "
        "bare: fit_and_evaluate in one process on the same Parquet rows. ratio: commit->registered / bare;\n"
        "overhead: commit->registered - bare. RSS: the training service's process (VmRSS before the job, VmHWM "
        "after) and its fitting worker (VmHWM)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

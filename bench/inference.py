"""Inference latency and throughput, against MLServer serving the same fitted pipeline.

    .venv/bin/python -m bench.inference [--quick] [--runs 3] [--seconds 3] [--concurrency 1,8,32]
                                        [--mixed] [--alt DAPRML_BATCHING=false ...]

On a freshly started isolated stack: two generated classification sets go through the gateway
into datasets whose schemas were declared ("numeric": 10 number columns from scikit-learn's
make_classification, fixed seed; "mixed": the same plus a category column), and the commits'
auto-train jobs register a champion of each (the default estimator, gradient_boosting). The
inference app serves it as it would any champion: compiled (ONNX Runtime) when training's check
passed, batched, with its default settings; which runtime served is read from its answers
(OIP `parameters.runtime`, JSON `runtime`; "unknown" when they do not say) and printed, as is
the prediction capture rate in force (`prediction_log_rate`, read from the app's environment).

The reference: MLServer 1.7 with its scikit-learn runtime (mlserver_sklearn.SKLearnModel),
serving the very pipeline the registry holds: its skops file is downloaded through the gateway,
loaded as the inference service loads it (sha256 and trusted types checked), and dumped with
joblib into a model folder of MLServer's (bench/mlserver.py: its own venv, made on first use).
It serves it twice: adaptive batching off, and on (max_batch_size 32, max_batch_time 2 ms).
Requests to it carry one input per column and parameters.content_type "pd", so its pandas codec
hands the pipeline the same named-column DataFrame. Before anything is timed, each target's
predictions on the same 500 rows are checked equal to each other and to the pipeline in this
process; the run stops if they are not.

Targets: our Open Inference Protocol (OIP v2) infer on the inference app's own port; the same
through the gateway (the public path: gateway -> its sidecar -> inference's sidecar -> app);
our JSON predict through the gateway; MLServer's OIP v2 infer on its own port, adaptive
batching off and on; with --alt, a second inference app (not behind the gateway) with those
environment variables, to compare settings (DAPRML_BATCHING=false, DAPRML_COMPILED=false, ...).

Measured, with the same rows and bodies for every target, from one client process on this
machine (a small keep-alive HTTP/1.1 client on uvloop, bench/httpload.py), `--runs` times over
the targets in turn (each warmed up in the first), on the one stack; the tables are medians:
  - latency: p50 and p99 of 1-row requests sent one after another on one connection;
  - throughput: requests/s and rows/s with 1, 8 and 32 requests in flight (one connection
    each), with requests of 1 row and of 100 rows.
Ratios are against MLServer with adaptive batching on (its best configuration), then off, and
the issue's targets are printed met or missed. Then where a single request's time goes
(bench/breakdown.py): the app's steps timed in this process, HTTP and the gateway path by
difference, with each process's CPU per request.

Fair and unfair: the OIP requests ask for the `predict` output only, as MLServer's runtime gives
by default; the JSON predict also computes class probabilities (it always does). Both servers
hold the model in memory (ours resolves the champion alias once, then serves it from memory).
MLServer direct has no sidecar at all, so against the gateway rows it measures what the public
path (two more processes, two sidecars) costs, not only the serving code; "inference app
direct" is the like-for-like row. MLServer predicts in a worker process of its own (its default,
parallel_workers 1), ours on the app's event loop or in a thread of its process. Client,
servers and sidecars share the machine's cores (stated in the output): when they are saturated,
a row measures CPU cost per request more than anything else. No thresholds: figures and ratios.
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

import httpx
import uvloop

from bench import breakdown, inference_report
from bench.common import environ, infrastructure, processes, running
from bench.httpload import BATCH_ROWS, Result, encoded, measure, median
from bench.mlserver import MLSERVER_BATCH, MLServer, mlserver_venv, mlserver_version
from bench.serving import KEY_RATE, Model, isolated_stack, predict_key, targets, train, verify
from scripts.stack import Stack


@dataclass
class Outcome:
    timed: list[tuple[Model, list[Result]]] = field(default_factory=list)  # each with its targets' medians
    runtimes: dict[str, dict[str, str]] = field(default_factory=dict)  # model kind -> target key -> runtime
    steps: breakdown.Breakdown | None = None  # where a request's time goes, for the first model timed
    capture: str = "?"  # the prediction capture rate in force, and where it comes from
    prediction_log: dict[str, int] = field(default_factory=dict)  # the inference app's counters after the runs


def capture_rate(stack: Stack) -> str:
    """The inference app's prediction_log_rate, as the running app reads it, and from where."""
    env = environ(processes(stack.app("inference").app_id)["app"])
    rate = breakdown.app_settings(env).prediction_log_rate
    source = "DAPRML_PREDICTION_LOG_RATE" if "DAPRML_PREDICTION_LOG_RATE" in env else "the default"
    return f"{rate:g} (inference's prediction_log_rate: {source})"


def timed_runs(
    stack: Stack,
    mlserver: MLServer,
    models: list[Model],
    alt: str | None,
    key: str,
    args: argparse.Namespace,
    out: Outcome,
) -> None:
    """args.runs runs over every target of every timed model, in turn; their medians."""
    per_model: dict[str, list[list[Result]]] = {m.kind: [] for m in models}
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for run in range(args.runs):
            for model in models:
                found = targets(stack, mlserver, model, alt, key)
                print(f"run {run + 1} of {args.runs}, {model.kind}: {len(found)} targets", flush=True)
                per_model[model.kind].append(runner.run(measure(found, model.rows, args, warm=run == 0)))
    for model in models:
        runs = per_model[model.kind]
        out.timed.append((model, [median([r[i] for r in runs]) for i in range(len(runs[0]))]))


def run(workdir: Path, venv: Path, alt_env: dict[str, str], args: argparse.Namespace) -> Outcome:
    """The stack and its champions, MLServer serving the same pipelines, every target checked
    against the pipeline, the timed runs, then the breakdown; both servers stopped at the end."""
    run_id = uuid.uuid4().hex[:8]
    alt = ", ".join(f"{k}={v}" for k, v in alt_env.items()) or None
    out = Outcome()
    with running(isolated_stack(workdir / "stack", run_id, alt_env)) as stack:
        mlserver: MLServer | None = None
        try:
            with stack.gateway(120) as gateway:
                models = [Model("numeric", f"bench-numeric-{run_id}"), Model("mixed", f"bench-mixed-{run_id}")]
                train(gateway, models, args.rows, args.timeout)
                key = predict_key(gateway)
            for model in models:
                print(f"trained: {model.name} v{model.version} champion {model.trained_s:.1f} s after the uploads")
            mlserver = MLServer(venv, workdir / "mlserver", {m.kind: (m.pipeline, m.version) for m in models})
            mlserver.start()
            for model in models:
                out.runtimes[model.kind] = verify(model, targets(stack, mlserver, model, alt, key))
            out.capture = capture_rate(stack)
            print(
                f"prediction capture rate in force: {out.capture}; the gateway targets send a predict key "
                f"with a rate of {KEY_RATE:,} calls a second",
                flush=True,
            )
            timed = models if args.mixed else models[:1]
            timed_runs(stack, mlserver, timed, alt, key, args, out)
            first, results = out.timed[0]
            by = {r.target.key: r.target for r in results}
            singles = [first.rows.iloc[i : i + 1] for i in range(200)]
            print("breakdown: timing the app's steps in this process, and CPU per request", flush=True)
            batch = encoded(by["direct"], [first.rows.iloc[:BATCH_ROWS]])[0]
            out.steps = breakdown.measure(
                stack, first.name, encoded(by["direct"], singles), encoded(by["gateway"], singles), batch, args
            )
            stats = httpx.get(
                f"http://127.0.0.1:{stack.app('inference').app_port}/internal/stats", headers=stack.app_headers()
            )
            out.prediction_log = stats.json().get("prediction_log", {}) if stats.status_code == 200 else {}
            troubles = mlserver.troubles()
            if troubles:
                print(f"MLServer's log has {len(troubles)} lines of trouble, such as: {troubles[0]}")
        except BaseException:
            if mlserver is not None:
                print(f"MLServer's log, its end:\n{mlserver.tail()}")
            raise
        finally:
            if mlserver is not None:
                mlserver.stop()
    return out


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few minutes: 0.5 s cells, c=1 and 32, fewer requests")
    parser.add_argument("--runs", type=int, default=3, help="timed runs over the targets; the tables are medians")
    parser.add_argument("--rows", type=int, default=3000, help="rows of each dataset")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each throughput cell")
    parser.add_argument("--concurrency", default="1,8,32", help="requests in flight, comma-separated")
    parser.add_argument("--latency-requests", type=int, default=500, help="sequential 1-row requests timed, at most")
    parser.add_argument("--latency-s", type=float, default=6.0, help="seconds of latency requests, at most")
    parser.add_argument("--mixed", action="store_true", help="time the model with a category column too")
    parser.add_argument(
        "--alt",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="run a second inference app with this environment variable (repeatable), timed beside the first",
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds from the uploads to the champions")
    args = parser.parse_args(argv)
    args.warm_s = 0.5
    if args.quick:
        args.seconds, args.concurrency, args.latency_requests, args.latency_s = 0.5, "1,32", 200, 1.0
        args.warm_s = 0.3
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if any("=" not in a for a in args.alt):
        parser.error("--alt takes NAME=VALUE")
    return args


def main(argv: list[str]) -> int:
    args = arguments(argv)
    t_start, load_start = time.monotonic(), os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; client, servers and sidecars "
        f"share them. Hops: inference app direct = client -> app; gateway = client -> gateway -> its daprd -> "
        f"inference's daprd -> app; MLServer direct = client -> MLServer's HTTP server -> its inference worker "
        f"process",
        flush=True,
    )
    venv = mlserver_venv()
    alt_env = dict(a.split("=", 1) for a in args.alt)
    with infrastructure(), tempfile.TemporaryDirectory(prefix="daprml-bench-inference-") as tmp:
        out = run(Path(tmp), venv, alt_env, args)
    print(f"\nprediction capture rate in force: {out.capture}; the prediction log after the runs: {out.prediction_log}")
    for model, results in out.timed:
        runtimes = out.runtimes[model.kind]
        inference_report.report(model.kind, model.version, results, runtimes, args.concurrency, args.runs)
    if out.steps is not None and out.timed:
        model, results = out.timed[0]
        by = {r.target.key: r for r in results}
        runtime = out.runtimes[model.kind]["direct"]
        breakdown.report(out.steps, runtime, by["direct"].p50_ms, by["gateway"].p50_ms)
    counts = [r.latency_count for _, results in out.timed for r in results]
    print(
        f"\n{args.rows} rows per dataset; {args.runs} runs; throughput cells of {args.seconds:g} s; latency from "
        f"{min(counts, default=0)}-{max(counts, default=0)} requests per target over the runs; MLServer "
        f"{mlserver_version()} (adaptive batching: {MLSERVER_BATCH}); load average at the start {load_start:.2f}, "
        f"at the end {os.getloadavg()[0]:.2f} (with this run's own load; {os.cpu_count()} cores); "
        f"whole run {time.monotonic() - t_start:.0f} s"
    )
    if load_start > (os.cpu_count() or 1):  # at the end it counts this run's own servers too
        print("NOTE: the load average was above the core count at the start: something else was running; noisy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Where a single request's time goes, for the inference bench.

In this process, the inference app's own steps are timed on the very request the latency runs
send (OIP infer, 1 row, `predict` only), and on a 100-row one beside it, each step on its own in
a loop (the median call): parsing the body into the request model, the model contract's name
check, decoding the tensors into columns, the contract's value check, the runtime's predict,
the runner around it (batching, the hand-over to a thread) and encoding the answer as FastAPI
does (jsonable_encoder, then json.dumps). The
data plane and the runtime are built as services/inference/app.py builds them, with the
settings the running inference app has (read from its environment), over the same model files
(fetched through the gateway).

What cannot be timed in here is worked out from the latency measured over HTTP:
  - HTTP and the web framework (uvicorn, routing, middleware, dependencies): the app's direct
    p50 less the in-process sum;
  - the gateway path: the gateway's p50 less the app's direct p50; of that, the gateway app's
    own part is taken as its CPU time per request (read from /proc over sequential requests),
    and the rest (two sidecars and the hops between four processes) is given combined: from
    outside, a sidecar's work and the waits between processes cannot be told apart. The CPU
    per request of each process on the path is printed beside it: for a process that works in
    several threads at once (scikit-learn's OpenMP, Go's runtime) it can exceed its share of the
    wall time, so these figures are not meant to add up to the latency.
The runner's line is its call less predict's: when it hands predict to a worker thread, it
includes any difference in predict's own speed there, which is printed beside it.
"""

import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import uvloop
from fastapi.encoders import jsonable_encoder

from bench.common import cpu_seconds, environ, processes
from bench.httpload import latency
from scripts.stack import Stack
from services.common.clients import RegistryClient
from services.common.contracts import VersionInfo
from services.inference.batching import Limits
from services.inference.dataplane import DataPlane
from services.inference.domain import contract, tensors
from services.inference.domain.errors import ModelMissing
from services.inference.domain.tensors import InferRequest
from services.inference.runtimes import Compiling
from services.inference.settings import Settings as InferenceSettings


@dataclass
class Timing:
    """The app's steps on one request, in this process."""

    steps: list[tuple[str, float]] = field(default_factory=list)  # (what, median ms)
    plane_ms: float = 0.0  # the data plane's infer, timed whole
    threaded_ms: float = 0.0  # predict timed inside a worker thread (the runner's hand-over is around it)

    @property
    def total(self) -> float:
        return sum(ms for _, ms in self.steps)


@dataclass
class Breakdown:
    runtime: str = "?"  # what predicted in this process
    timings: dict[int, Timing] = field(default_factory=dict)  # rows in the request -> its steps
    calls: int = 0
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # path -> process -> CPU ms per request
    requests: dict[str, int] = field(default_factory=dict)  # path -> requests the CPU was read over
    problem: str | None = None  # why the in-process part could not be measured


class GatewayRegistry:
    """The registry as the data plane asks it (a version, its skops file, its ONNX file),
    answered through the gateway."""

    def __init__(self, gateway: httpx.Client):
        self.gateway = gateway

    async def version(self, name: str, ref: str | int) -> VersionInfo:
        reply = self.gateway.get(f"/api/models/{name}/versions/{ref}")
        return VersionInfo.model_validate(reply.raise_for_status().json())

    async def artifact(self, name: str, version: int) -> bytes:
        return self.gateway.get(f"/api/models/{name}/versions/{version}/artifact").raise_for_status().content

    async def onnx(self, name: str, version: int) -> bytes:
        reply = self.gateway.get(f"/api/models/{name}/versions/{version}/onnx")
        if reply.status_code != 200:  # the data plane then serves the skops file, and the report says so
            raise ModelMissing(f"the gateway answered {reply.status_code} for its ONNX file: {reply.text[:200]}")
        return reply.content


def app_settings(env: dict[str, str]) -> InferenceSettings:
    """The settings an app with this environment reads (parsed as it parses them)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return InferenceSettings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def data_plane(settings: InferenceSettings, registry: GatewayRegistry) -> DataPlane:
    # As services/inference/app.py builds it (kept in step by hand).
    batching = Limits(settings.max_batch_size, settings.max_batch_wait_s) if settings.batching else None
    compiling = Compiling(
        settings.compiled, frozenset(settings.uncompiled_models), settings.onnx_threads, settings.inline_rows
    )
    registry_port = cast(RegistryClient, registry)  # the three calls the data plane makes
    return DataPlane(registry_port, 1, batching=batching, unbatched=set(settings.unbatched_models), compiling=compiling)


def median_ms(fn: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def median_ms_async(fn: Callable[[], Awaitable[Any]], calls: int) -> float:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def in_process(plane: DataPlane, name: str, body: bytes, calls: int, out: Breakdown) -> Timing:
    loaded = await plane.model(name)
    card = loaded.card
    request = InferRequest.model_validate(json.loads(body))
    strict = tensors.strict(request)
    rows = tensors.decode(request.inputs, card)
    predictions, _ = loaded.runtime.predict(rows, False)

    def names(card: Any) -> Any:
        return contract.input_names(tensors.named(request.inputs, card), card, strict)

    def encode() -> bytes:
        outputs = tensors.encode(request, card, predictions, None, loaded.classes)
        answer = {
            "model_name": name,
            "model_version": str(loaded.version),
            "id": str(uuid.uuid4()),
            "parameters": {"runtime": loaded.runtime.name},
            "outputs": outputs,
        }
        return json.dumps(jsonable_encoder(answer), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()

    out.runtime, out.calls = loaded.runtime.name, calls
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("parse the JSON body into the request model", lambda: InferRequest.model_validate(json.loads(body))),
        ("model contract: the input names", lambda: names(card)),
        ("decode the tensors into columns", lambda: tensors.decode(request.inputs, card)),
        ("model contract: the values", lambda: contract.values(rows, card)),
        (f"predict ({loaded.runtime.name})", lambda: loaded.runtime.predict(rows, False)),
        ("encode the answer (outputs, then JSON bytes)", encode),
    ]
    timing = Timing([(what, median_ms(fn, calls)) for what, fn in parts])
    runner = await median_ms_async(lambda: loaded.runner(rows, False), calls)
    timing.steps.insert(5, ("the runner around predict (batching, thread), less predict", runner - timing.steps[4][1]))
    with ThreadPoolExecutor(1) as pool:  # a thread of its own, as asyncio.to_thread's are
        timing.threaded_ms = pool.submit(median_ms, lambda: loaded.runtime.predict(rows, False), calls).result()
    timing.plane_ms = await median_ms_async(
        lambda: plane.infer(
            name,
            None,
            lambda card: tensors.decode(request.inputs, card),
            probabilities=False,
            names=names,
            size=tensors.rows(request),
        ),
        calls,
    )
    return timing


async def cpu_per_request(
    pids: dict[str, int], port: int, requests: list[bytes], args: Any
) -> tuple[dict[str, float], int]:
    """CPU ms per request of each process, over sequential requests."""
    before = {what: cpu_seconds(pid) for what, pid in pids.items()}
    times, _ = await latency(port, requests, args.latency_requests, args.latency_s)
    used = {what: cpu_seconds(pid) - before[what] for what, pid in pids.items()}
    return {what: seconds * 1000 / len(times) for what, seconds in used.items()}, len(times)


def measure(stack: Stack, name: str, direct: list[bytes], gateway: list[bytes], batch: bytes, args: Any) -> Breakdown:
    """`direct` and `gateway`: the encoded 1-row requests of the two targets; `batch`: a request
    of several rows to the app, whose steps are timed in this process too."""
    out = Breakdown()
    inference, front = (processes(stack.app(s).app_id) for s in ("inference", "gateway"))
    gateway_path = {
        "gateway app": front.get("app"),
        "gateway's daprd": front.get("daprd"),
        "inference's daprd": inference.get("daprd"),
        "inference app": inference.get("app"),
    }
    paths = {
        "direct": ({"inference app": inference.get("app")}, stack.app("inference").app_port, direct),
        "gateway": (gateway_path, stack.app("gateway").app_port, gateway),
    }
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        for path, (pids, port, requests) in paths.items():
            found = {what: pid for what, pid in pids.items() if pid is not None}  # a process not found: no figure
            out.cpu[path], out.requests[path] = runner.run(cpu_per_request(found, port, requests, args))
        try:
            with stack.gateway(60) as client:
                plane = data_plane(app_settings(environ(inference["app"])), GatewayRegistry(client))
                for request in (direct[0], batch):
                    body = request.split(b"\r\n\r\n", 1)[1]
                    rows = tensors.rows(InferRequest.model_validate_json(body))
                    out.timings[rows] = runner.run(in_process(plane, name, body, args.latency_requests, out))
                runner.run(plane.close())
        except Exception as e:  # the in-process part follows the service's code, which moves: say, do not stop
            out.problem = f"{type(e).__name__}: {e}"
    return out


def report(b: Breakdown, runtime: str, direct_p50: float, gateway_p50: float) -> None:
    print(f"\nwhere a single request's time goes (OIP infer, `predict` only; the app said: {runtime}):")
    single = b.timings.get(1)
    if b.problem is not None or single is None:
        print(f"  in-process steps: not measured ({b.problem}); shown combined below")
    else:
        if b.runtime != runtime:
            print(f"  NOTE: in this process {b.runtime} predicted, the app said {runtime}: the steps are not its")
        sizes = sorted(b.timings)
        print(f"  in this process, the app's own functions on the same request (median of {b.calls} calls each):")
        print(f"    {'':<62} " + " ".join(f"{f'{n} row' + ('s' if n > 1 else ''):>9}" for n in sizes))
        for i, (what, _) in enumerate(single.steps):
            print(f"    {what:<62} " + " ".join(f"{b.timings[n].steps[i][1]:6.3f} ms" for n in sizes))
        print(f"    {'sum':<62} " + " ".join(f"{b.timings[n].total:6.3f} ms" for n in sizes))
        for n in sizes:
            t = b.timings[n]
            inner = sum(ms for _, ms in t.steps[1:6])
            size = f"{n} row{'s' if n > 1 else ''}"
            print(
                f"    ({size}: the data plane's infer timed whole {t.plane_ms:.3f} ms, the steps it holds summed "
                f"{inner:.3f}; predict timed inside a worker thread {t.threaded_ms:.3f})"
            )
        print(
            f"  {'HTTP and the web framework (1 row: direct p50 less the sum)':<64} {direct_p50 - single.total:7.3f} ms"
        )
    print(f"  {'= inference app direct, p50 (1 row)':<64} {direct_p50:7.3f} ms")
    cpu_direct, cpu_gateway = b.cpu.get("direct", {}), b.cpu.get("gateway", {})
    added = gateway_p50 - direct_p50
    gateway_app = cpu_gateway.get("gateway app")
    print(f"  {'the gateway path adds (gateway p50 less direct p50)':<64} {added:7.3f} ms")
    if gateway_app is None:
        print("    the gateway app's part not separated (its process was not found): all of it combined")
    else:
        print(f"    {'the gateway app (its CPU per request)':<62} {gateway_app:7.3f} ms")
        print(f"    {'two sidecars and the hops, combined (the rest)':<62} {added - gateway_app:7.3f} ms")
    print(
        f"  CPU per 1-row request over {b.requests.get('gateway', 0)} sequential requests through the gateway: "
        + ", ".join(f"{what} {ms:.2f} ms" for what, ms in cpu_gateway.items())
        + f"; over {b.requests.get('direct', 0)} direct: "
        + ", ".join(f"{what} {ms:.2f} ms" for what, ms in cpu_direct.items())
    )

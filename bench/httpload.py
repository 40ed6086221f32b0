"""The inference bench's client: a small keep-alive HTTP/1.1 client on asyncio (run on uvloop),
so that the client costs little next to the servers, sending pre-encoded requests; the latency
and throughput measured with it; the machine's CPU use meanwhile; the median of several runs."""

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

BATCH_ROWS = 100
CLOSED = 0  # the status of a request the server did not answer
TIMEOUT_S = 10.0  # MLServer was seen to leave a few requests unanswered under load


@dataclass
class Target:
    key: str  # what the report calls it: direct, gateway, json, mlserver, mlserver-batched, alt
    label: str
    port: int
    path: str
    body: Callable[[pd.DataFrame], dict[str, Any]]  # rows -> the JSON body
    predictions: Callable[[dict[str, Any]], list[Any]]  # the answer -> the predicted labels
    runtime: Callable[[dict[str, Any]], str | None]  # the answer -> what predicted, when it says
    headers: dict[str, str] = field(default_factory=dict)  # the key (gateway) or app token (the app itself)


class Connection:
    """One keep-alive HTTP/1.1 connection: pre-encoded POSTs, the status and body read back."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, request: bytes) -> tuple[int, bytes]:
        """The answer's status and body; status CLOSED when the server closed or reset the
        connection, or did not answer within TIMEOUT_S (the next call opens a new one)."""
        try:
            async with asyncio.timeout(TIMEOUT_S):
                return await self._post(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.close()
            return CLOSED, b""

    async def _post(self, request: bytes) -> tuple[int, bytes]:
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
    requests: int = 0  # answered 200
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
                if status == 200:
                    cell.requests += 1
                else:  # not counted as served: a refusal (a 429, say) is fast and would flatter the figure
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
    runs: list["Result"] = field(default_factory=list)  # of a median: the runs it is the median of


def median(runs: list[Result]) -> Result:
    """One target's runs as one: the median p50 and p99, and for each cell the run with the
    median requests/s (the lower middle one for an even count), with the errors of every run;
    the latency requests and errors are summed."""
    first = runs[0]
    out = Result(first.target, latency_errors=sum(r.latency_errors for r in runs), runs=runs)
    out.p50_ms = statistics.median(r.p50_ms for r in runs)
    out.p99_ms = statistics.median(r.p99_ms for r in runs)
    out.latency_count = sum(r.latency_count for r in runs)
    for key in first.cells:
        cells = sorted((r.cells[key] for r in runs), key=lambda c: c.rps)
        errors: Counter[int] = Counter()
        for cell in cells:
            errors.update(cell.errors)
        out.cells[key] = dataclasses.replace(cells[(len(cells) - 1) // 2], errors=dict(errors))
    return out


async def measure(found: list[Target], rows: pd.DataFrame, args: argparse.Namespace, warm: bool) -> list[Result]:
    """Each target's latency (args.latency_requests or args.latency_s) and its throughput at
    each of args.concurrency for args.seconds, with 1-row and BATCH_ROWS-row requests; the same
    rows for every target. `warm`: each target is warmed up first (one-time costs: imports,
    first predictions); a later run only opens its connections before timing."""
    singles = [rows.iloc[i : i + 1] for i in range(200)]
    batches = [rows.iloc[i : i + BATCH_ROWS] for i in range(0, 10 * BATCH_ROWS, BATCH_ROWS)]
    results = []
    for target in found:
        t0 = time.monotonic()
        small, big = encoded(target, singles), encoded(target, batches)
        if warm:
            await latency(target.port, small, 30, 1.0)
            await throughput(target.port, small, max(args.concurrency), args.warm_s, 1)
            await throughput(target.port, big, max(args.concurrency), args.warm_s, BATCH_ROWS)
        result = Result(target)
        times, result.latency_errors = await latency(target.port, small, args.latency_requests, args.latency_s)
        result.latency_count = len(times)
        result.p50_ms, result.p99_ms = (float(v) * 1000 for v in np.percentile(times, [50, 99]))
        for size, requests in ((1, small), (BATCH_ROWS, big)):
            for c in args.concurrency:
                result.cells[(size, c)] = await throughput(target.port, requests, c, args.seconds, size)
        results.append(result)
        top = max(args.concurrency)
        print(
            f"  {target.label}: p50 {result.p50_ms:.2f} ms, 1 row c={top} {result.cells[(1, top)].rps:.0f} req/s, "
            f"{BATCH_ROWS} rows c={top} {result.cells[(BATCH_ROWS, top)].rps * BATCH_ROWS:.0f} rows/s "
            f"({time.monotonic() - t0:.0f} s)",
            flush=True,
        )
    return results

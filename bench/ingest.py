#!/usr/bin/env python3
"""Ingestion throughput and memory, against a ceiling measured in the same run.

    .venv/bin/python -m bench.ingest [--rows 100000,1000000] [--part-mb 16]

For each size: a generated CSV (10 columns: 4 floats, 3 integers, a category, a boolean and
the class label) goes through the gateway in parts, several in flight (gateway -> its daprd
-> ingestion's daprd -> ingestion -> blob binding and state store), into a dataset whose
schema was declared, then is committed; a small upload first warms the fresh stack up. Printed: rows/s,
and the ingestion process's peak RSS (VmHWM), each size on a freshly started stack.
The ceiling: pyarrow reading the same CSV and writing Parquet to local disk, in one process.
No thresholds: figures and ratios only.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.common import gateway_client, infrastructure, rss_mb, running, upload
from scripts.proc import ROOT, free_port, listener_pid, port_open, wait_until
from scripts.stack import Stack

# Declared up front, as a pipeline loading version after version of one dataset would.
DATASET = {
    "task": "classification",
    "target": "label",
    "columns": [{"name": f"f{i}", "type": "number"} for i in range(4)]
    + [{"name": f"i{i}", "type": "integer"} for i in range(3)]
    + [
        {"name": "color", "type": "category"},
        {"name": "flag", "type": "boolean"},
        {"name": "label", "type": "category"},
    ],
}


def generate(rows: int, path: Path) -> None:
    rng = np.random.default_rng(0)
    with pacsv.CSVWriter(
        str(path),
        pa.schema(
            [(f"f{i}", pa.float64()) for i in range(4)]
            + [(f"i{i}", pa.int64()) for i in range(3)]
            + [("color", pa.string()), ("flag", pa.bool_()), ("label", pa.string())]
        ),
    ) as writer:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            writer.write_table(
                pa.table(
                    {f"f{i}": rng.normal(size=n).round(6) for i in range(4)}
                    | {f"i{i}": rng.integers(0, 1_000_000, size=n) for i in range(3)}
                    | {
                        "color": rng.choice(["red", "green", "blue", "cyan"], size=n),
                        "flag": rng.random(n) < 0.5,
                        "label": rng.choice(["a", "b", "c"], size=n),
                    }
                )
            )


def ceiling(path: Path, workdir: Path) -> float:
    """Seconds for pyarrow to read the CSV and write it as Parquet, best of two."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        pq.write_table(pacsv.read_csv(path), workdir / "ceiling.parquet")
        best = min(best, time.perf_counter() - t0)
    return best


FAKE_APP = """
import uvicorn
from tests.fakes import fake_ports
from services.ingestion.app import IngestionPorts, create_app
from services.ingestion.settings import Settings
uvicorn.run(create_app(Settings(outbox_interval_s=3600), fake_ports(IngestionPorts)), host="127.0.0.1", port={port},
            log_level="warning")
"""


class WithoutDapr:
    """The ingestion app alone, its ports faked in memory: what Dapr and the gateway cost."""

    def __enter__(self):
        port = free_port()
        self.gateway_url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-c", FAKE_APP.format(port=port)], cwd=ROOT)
        if not wait_until(lambda: port_open(port), 30):
            raise RuntimeError("the ingestion app without Dapr did not start")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)


def ingestion_pid(stack: Stack) -> int:
    """The service process itself: the one listening on its port (its supervisor is not)."""
    pid = listener_pid(stack.app("ingestion").app_port)
    if pid is None:
        raise RuntimeError("ingestion process not found")
    return pid


def ingest(stack: Stack, path: Path, part_bytes: int, concurrency: int) -> tuple[float, int, int]:
    """Seconds from starting the upload to the committed version, rows stored, parts sent."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    # No key for the app without Dapr.
    with gateway_client(stack.gateway_url, getattr(stack, "admin_key", None), concurrency) as client:
        client.post("/api/datasets", json={"name": name, **DATASET}).raise_for_status()
        t0 = time.perf_counter()
        committed, count = upload(client, name, path, part_bytes, concurrency)
        return time.perf_counter() - t0, committed["row_count"], count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--part-mb", type=float, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight at once")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.rows.split(",")]
    part_bytes = int(args.part_mb * 1024 * 1024)
    with infrastructure():
        print(
            f"machine: {os.cpu_count()} cores; parts of {args.part_mb:g} MB, {args.concurrency} in flight; "
            f"Parquet (snappy) on both sides\n"
        )
        print(
            f"{'rows':>9} {'CSV MB':>7} {'parts':>5} | {'daprml s':>8} {'rows/s':>9} {'RSS MB idle':>11} "
            f"{'peak':>5} | {'no Dapr rows/s':>14} | "
            f"{'pyarrow s':>9} {'rows/s':>9} | {'ratio':>5}"
        )
        with tempfile.TemporaryDirectory(prefix="daprml-bench-") as tmp:
            workdir = Path(tmp)
            warmup = workdir / "warmup.csv"
            generate(20_000, warmup)
            for rows in sizes:
                measure(rows, workdir, warmup, part_bytes, args.concurrency)
    print(
        "\nratio: daprml rows/s over pyarrow's. RSS: the ingestion process on a fresh stack, before the "
        "upload (VmRSS) and its peak (VmHWM).\nno Dapr: the ingestion app alone, its ports faked in memory, "
        "parts sent straight to it: what the gateway, the sidecars and the stores cost."
    )
    return 0


def measure(rows: int, workdir: Path, warmup: Path, part_bytes: int, concurrency: int) -> None:
    """One size: through a fresh stack, through the app alone, and pyarrow's ceiling; one line."""
    csv_path = workdir / f"data-{rows}.csv"
    generate(rows, csv_path)
    ceiling_s = ceiling(csv_path, workdir)
    with running(Stack.isolated(workdir / f"stack-{rows}", uuid.uuid4().hex[:8])) as stack:
        idle = rss_mb(ingestion_pid(stack), "VmRSS")
        # One small upload first: a fresh process pays one-time costs (imports,
        # first pyarrow calls, gRPC channel) that are not throughput.
        ingest(stack, warmup, part_bytes, concurrency)
        seconds, stored, count = ingest(stack, csv_path, part_bytes, concurrency)
        rss = rss_mb(ingestion_pid(stack))
    assert stored == rows, f"stored {stored} of {rows} rows"
    with WithoutDapr() as alone:
        ingest(alone, warmup, part_bytes, concurrency)
        alone_s = ingest(alone, csv_path, part_bytes, concurrency)[0]
    ours, theirs = rows / seconds, rows / ceiling_s
    print(
        f"{rows:>9} {csv_path.stat().st_size / 2**20:>7.1f} {count:>5} | {seconds:>8.2f} "
        f"{ours:>9,.0f} {idle:>11.0f} {rss:>5.0f} | {rows / alone_s:>14,.0f} | {ceiling_s:>9.2f} "
        f"{theirs:>9,.0f} | {ours / theirs:>5.2f}"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the benches share: the generated classification set, the infrastructure started around
a run (and left running when other sidecars use it), a freshly started stack, a client of its
gateway, multi-part uploads through it, and a process's memory, children, CPU time and
environment, and the processes (app, daprd) of an app id."""

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sklearn.datasets import make_classification

from scripts import credentials, infra
from scripts.proc import PROC
from scripts.stack import Stack

FEATURES = 10
CLASSES = np.array(["alpha", "beta", "gamma"])


def classification(rows: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """scikit-learn's make_classification with a fixed seed: the number columns x0..x9
    (rounded to 6 places, as a CSV would carry them) and each row's class index into CLASSES."""
    X, y = make_classification(
        n_samples=rows,
        n_features=FEATURES,
        n_informative=6,
        n_redundant=2,
        n_classes=len(CLASSES),
        random_state=0,
    )
    return {f"x{i}": X[:, i].round(6) for i in range(FEATURES)}, y


def classification_schema(extra: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The declared schema of a classification set: x0..x9, any `extra` columns, the label."""
    columns = [{"name": f"x{i}", "type": "number"} for i in range(FEATURES)] + (extra or [])
    return {"task": "classification", "target": "label", "columns": columns + [{"name": "label", "type": "category"}]}


def sidecars() -> list[int]:
    """Every daprd process running on this machine."""
    found = []
    for cmdline in PROC.glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"/daprd"):
            found.append(int(cmdline.parent.name))
    return found


@contextmanager
def infrastructure() -> Iterator[list[str]]:
    """infra up for the run (the names of the servers it started), and down after. Redis,
    placement and scheduler are shared: another checkout's stack may have started using the
    ones started here meanwhile, so they are stopped only when no sidecar is left on them."""
    started = infra.up()
    try:
        yield started
    finally:
        users = sidecars()
        if started and users:
            print(f"infra: left running ({', '.join(started)}): {len(users)} other sidecars use it")
        else:
            infra.down(started)


@contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """The stack started, and stopped at the end whatever happened."""
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def gateway_client(url: str, key: str | None, connections: int) -> httpx.Client:
    """A client of a gateway (or of an app without one: no key) that keeps up to `connections`
    open, for parts sent in parallel; generous timeout for big uploads and commits."""
    return httpx.Client(
        base_url=url,
        timeout=600,
        limits=httpx.Limits(max_connections=connections),
        headers=credentials.auth_headers(key),
    )


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """VmHWM: the peak resident set so far; VmRSS: the current one."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[tuple[int, str]]:
    """Child processes of pid (from /proc/*/stat), each with what it is."""
    found = []
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid:
                continue
            child = int(stat.parent.name)
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        kind = "tracker" if "resource_tracker" in cmdline else "worker" if "spawn_main" in cmdline else "child"
        found.append((child, kind))
    return found


def cpu_seconds(pid: int) -> float:
    """The CPU time the process has used so far, all its threads (user and system; /proc/PID/stat)."""
    fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def environ(pid: int) -> dict[str, str]:
    """The environment the process started with (/proc/PID/environ)."""
    pairs = (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    return dict(p.decode(errors="replace").partition("=")[::2] for p in pairs if b"=" in p)


def processes(app_id: str) -> dict[str, int]:
    """The running processes of an app id: "daprd" (its sidecar, by --app-id) and "app" (the
    service, by its APP_ID); a key is missing when its process is not found (one replica each)."""
    found: dict[str, int] = {}
    for cmdline in PROC.glob("[0-9]*/cmdline"):
        pid = int(cmdline.parent.name)
        try:
            argv = cmdline.read_bytes().split(b"\0")
            if argv[0].endswith(b"/daprd"):
                if app_id.encode() in argv and argv[argv.index(app_id.encode()) - 1] == b"--app-id":
                    found["daprd"] = pid
            elif any(a.startswith(b"services.") for a in argv) and environ(pid).get("APP_ID") == app_id:
                found["app"] = pid
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return found


def parts(path: Path, part_bytes: int) -> Iterator[bytes]:
    """The CSV cut at line ends into parts of about part_bytes, each starting with the header."""
    with open(path, "rb") as f:
        header = f.readline()
        while True:
            chunk = f.read(part_bytes)
            if not chunk:
                return
            chunk += f.readline()  # finish the last line
            yield header + chunk


def upload(
    client: httpx.Client, name: str, path: Path, part_bytes: int, concurrency: int
) -> tuple[dict[str, Any], int]:
    """A multi-part upload of the CSV into dataset `name`, committed: the commit's answer and
    the parts sent. The client should allow `concurrency` connections."""
    upload_id = client.post(f"/api/datasets/{name}/uploads").json()["upload_id"]

    def put(numbered: tuple[int, bytes]) -> None:
        number, body = numbered
        client.put(
            f"/api/datasets/{name}/uploads/{upload_id}/parts/{number}",
            content=body,
            headers={"content-type": "text/csv"},
        ).raise_for_status()

    numbered = list(enumerate(parts(path, part_bytes), start=1))
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(put, numbered))
    committed = client.post(f"/api/datasets/{name}/uploads/{upload_id}/commit")
    committed.raise_for_status()
    return committed.json(), len(numbered)

"""Prometheus and Jaeger for the local stack, both optional: DAPRML_OBSERVABILITY=off starts
neither, and a machine without them (no root to install Prometheus, no Go to build Jaeger) runs
the stack without them, saying so.

- Prometheus (Debian's package) on 127.0.0.1:9090, its data in .data/prometheus (kept a day,
  512 MB at most). One job, `daprml`, finds its targets in .data/prometheus/targets/*.json
  (file_sd): each stack writes its own file when it starts (every app's metrics port, every
  daprd's, every replica; labels app_id, service, kind) and removes it when it stops; infra
  writes `infra.json` for the servers it runs that have an exporter.
- Jaeger v2 (built from dapr/jaeger by scripts/install-dapr, .data/dapr.env names it), traces in
  memory, every listener on 127.0.0.1: OTLP 4317 (gRPC, the sidecars) and 4318 (HTTP, the
  apps), query API and UI 16686, query gRPC 16685, health 13133, its own metrics 8888. Its
  configuration is a file made here (.data/jaeger/config.yaml).

The run file (scripts/runfile.py) points the sidecars and apps at them only when they are
there (`wiring`)."""

import json
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.infra.spec import LOCALHOST, PIDS, Server
from scripts.proc import (
    DATA,
    SetupError,
    clients,
    listener_pid,
    port_open,
    read_env_file,
    read_pid,
    wait_until,
    write_if_changed,
)

ENV = "DAPRML_OBSERVABILITY"
PROMETHEUS_PORT = 9090
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
QUERY_PORT = 16686
QUERY_GRPC_PORT = 16685
HEALTH_PORT = 13133
JAEGER_METRICS_PORT = 8888
NAMES = ("prometheus", "jaeger")

PROMETHEUS_URL = f"http://{LOCALHOST}:{PROMETHEUS_PORT}"
TRACES_URL = f"http://{LOCALHOST}:{QUERY_PORT}"
# What the apps' OpenTelemetry SDK reads (OTLP over HTTP, protobuf).
APP_ENV = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{LOCALHOST}:{OTLP_HTTP_PORT}",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
}
# A daprd Configuration's tracing exporter (spec.tracing.otel; daprd 1.18's fields).
DAPRD_OTEL = {"endpointAddress": f"{LOCALHOST}:{OTLP_GRPC_PORT}", "isSecure": False, "protocol": "grpc"}

PROMETHEUS_DIR = DATA / "prometheus"
TARGETS = PROMETHEUS_DIR / "targets"
INFRA_TARGETS = "infra.json"  # the servers infra runs; every other file is a stack's
SCRAPE_INTERVAL = "5s"
RETENTION = ("1d", "512MB")  # time, size: development data
MAX_TRACES = 10000  # Jaeger's memory store keeps at most this many traces (the oldest go)
STALE_AFTER_S = 120  # a stack's target file nothing answers on for this long is a leftover


def enabled() -> bool:
    """Whether DAPRML_OBSERVABILITY leaves observability on (the default)."""
    return os.environ.get(ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def setting() -> str:
    return f"{ENV}={os.environ.get(ENV, 'on')}"


@dataclass(frozen=True)
class Wiring:
    """What the run file points the stack at."""

    metrics: bool  # the gateway reads Prometheus (DAPRML_PROMETHEUS_URL)
    traces: bool  # daprd and the apps export spans; the gateway links to the trace backend


def wiring() -> Wiring:
    """On when observability is, and each server can run here (its program is there) or
    already answers."""
    if not enabled():
        return Wiring(False, False)
    metrics = bool(shutil.which("prometheus")) or port_open(PROMETHEUS_PORT)
    return Wiring(metrics, jaeger_program() is not None or port_open(OTLP_GRPC_PORT))


def jaeger_program() -> str | None:
    """The Jaeger that scripts/install-dapr built (.data/dapr.env), when it is there."""
    try:
        program = read_env_file(DATA / "dapr.env").get("DAPRML_JAEGER", "")
    except SetupError:
        return None
    return program if program and Path(program).is_file() else None


def servers() -> list[Server]:
    """Prometheus, then Jaeger (stopped in the reverse order, Jaeger first)."""
    return [prometheus(), jaeger()]


def prometheus() -> Server:
    conf = PROMETHEUS_DIR / "prometheus.yml"
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": "4s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {
                "job_name": "daprml",
                # Picked up as files come and go (inotify); read again every 30 s besides.
                "file_sd_configs": [{"files": [str(TARGETS / "*.json")], "refresh_interval": "30s"}],
            }
        ],
    }
    return Server(
        "prometheus",
        PROMETHEUS_PORT,
        [
            "prometheus",
            f"--config.file={conf}",
            f"--web.listen-address={LOCALHOST}:{PROMETHEUS_PORT}",
            f"--storage.tsdb.path={PROMETHEUS_DIR / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION[0]}",
            f"--storage.tsdb.retention.size={RETENTION[1]}",
        ],
        files={conf: yaml.safe_dump(config, sort_keys=False)},
        package="prometheus",
        prepare=lambda: TARGETS.mkdir(parents=True, exist_ok=True),
        timeout_s=60,
        ready=prometheus_ready,
        optional=True,
        users=live_stacks,
        exporter=PROMETHEUS_PORT,
    )


def prometheus_ready(timeout_s: float = 120) -> None:
    """Prometheus listens before it has replayed its write-ahead log and answers 503 until then
    (a day of a busy stack's samples takes a while): waits for /-/ready, saying so when it lasts."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"{PROMETHEUS_URL}/-/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    t0 = time.monotonic()
    if not wait_until(ready, timeout_s, interval_s=0.5):
        print(f"infra: prometheus still not ready after {timeout_s:.0f}s (replaying its write-ahead log); charts wait")
    elif time.monotonic() - t0 > 2:
        print(f"infra: prometheus ready after {time.monotonic() - t0:.1f}s (its write-ahead log replayed)")


def jaeger_config(host: str = LOCALHOST) -> dict[str, Any]:
    """Jaeger v2's configuration (an OpenTelemetry Collector's): OTLP in, traces kept in
    memory, the query API; each listener named, on `host`: 127.0.0.1 here, every interface of
    its container in compose (its defaults include ports we do not want: zipkin, jaeger's own
    protocols, remote sampling)."""

    def local(port: int) -> dict[str, str]:
        return {"endpoint": f"{host}:{port}"}

    telemetry = {"prometheus": {"host": host, "port": JAEGER_METRICS_PORT}}
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["jaeger_storage_exporter"]}
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "basic",
                    "readers": [{"pull": {"exporter": telemetry}}],
                },
                "logs": {"level": "info"},
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": local(HEALTH_PORT)},
            "jaeger_query": {
                "storage": {"traces": "memory"},
                "enable_tracing": False,  # its own spans would fill the store it serves
                "http": local(QUERY_PORT),
                "grpc": local(QUERY_GRPC_PORT),
            },
            "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": MAX_TRACES}}}},
        },
        "receivers": {"otlp": {"protocols": {"grpc": local(OTLP_GRPC_PORT), "http": local(OTLP_HTTP_PORT)}}},
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
    }


def jaeger() -> Server:
    conf = DATA / "jaeger" / "config.yaml"
    program = jaeger_program()

    def built() -> None:
        if program is None:
            raise SetupError("not built (scripts/install-dapr builds it from dapr/jaeger when Go is installed)")

    return Server(
        "jaeger",
        QUERY_PORT,
        [program or "jaeger", "--config", str(conf)],
        files={conf: yaml.safe_dump(jaeger_config(), sort_keys=False)},
        prepare=built,
        optional=True,
        users=lambda: clients(OTLP_GRPC_PORT) + clients(OTLP_HTTP_PORT),
        exporter=JAEGER_METRICS_PORT,
    )


def targets_dir() -> Path:
    """Where the Prometheus answering on its port reads targets: ours, or, when another
    checkout's answers there (used as it is, as its Redis would be), the folder beside the
    configuration its command line names."""
    pid = listener_pid(PROMETHEUS_PORT) if port_open(PROMETHEUS_PORT) else None
    if pid is None or pid == read_pid(PIDS / "prometheus.pid"):
        return TARGETS
    try:
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
        named = next(a for a in argv if a.startswith("--config.file=")).split("=", 1)[1]
        conf = Path(f"/proc/{pid}/cwd").resolve() / named
    except (OSError, StopIteration):
        return TARGETS
    theirs = conf.parent / "targets"
    return theirs if theirs.is_dir() and os.access(theirs, os.W_OK) else TARGETS


def group(address: str, app_id: str, service: str, kind: str) -> dict[str, Any]:
    """One file_sd target group (Prometheus adds `instance`, the address, and `job`)."""
    return {"targets": [address], "labels": {"app_id": app_id, "service": service, "kind": kind}}


def stack_targets(spec: dict[str, Any], metrics_env: str) -> list[dict[str, Any]]:
    """The targets of a run file: every app's metrics port (kind `app`: the apps whose env
    names one) and every daprd's metricsPort (kind `daprd`), every replica."""
    groups = []
    for app in spec["apps"]:
        app_id = app["appID"]
        service = app_id.split("-", 1)[0]
        port = (app.get("env") or {}).get(metrics_env)
        if port:
            groups.append(group(f"{LOCALHOST}:{port}", app_id, service, "app"))
        if app.get("metricsPort"):
            groups.append(group(f"{LOCALHOST}:{app['metricsPort']}", app_id, service, "daprd"))
    return groups


def write_targets(name: str, groups: list[dict[str, Any]]) -> Path:
    path = targets_dir() / f"{name}.json"
    write_if_changed(path, json.dumps(groups, indent=1) + "\n")
    return path


def remove_targets(name: str) -> None:
    for folder in {TARGETS, targets_dir()}:
        (folder / f"{name}.json").unlink(missing_ok=True)


def infra_targets(running: list[Server]) -> None:
    """infra.json: the servers infra runs (ours or used) that serve Prometheus metrics."""
    groups = [group(f"{LOCALHOST}:{s.exporter}", s.name, s.name, "server") for s in running if s.exporter]
    write_targets(INFRA_TARGETS.removesuffix(".json"), groups)


def _answers(path: Path) -> bool:
    """Whether any target of a target file still listens."""
    try:
        groups = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return any(port_open(int(t.rsplit(":", 1)[1])) for g in groups for t in g.get("targets", []))


def live_stacks() -> int:
    """The stacks whose targets Prometheus scrapes that still run (what keeps it in use). A
    leftover file of a stack that was killed, not stopped, is removed on the way."""
    live = 0
    for path in sorted(TARGETS.glob("*.json")):
        if path.name == INFRA_TARGETS:
            continue
        if _answers(path):
            live += 1
        elif time.time() - path.stat().st_mtime > STALE_AFTER_S:
            path.unlink(missing_ok=True)
    return live


def summary() -> list[str]:
    """What `make up` prints about them: their URLs, or why there are none."""
    if not enabled():
        return [f"prometheus: off ({setting()})", f"traces: off ({setting()})"]
    lines = []
    # A Jaeger built from its Go module has no web UI (its assets are built with npm from another
    # repository): a placeholder page, and the query API the console reads.
    notes = {"prometheus": "", "traces": f" (Jaeger's query API: {TRACES_URL}/api/traces?service=<app id>)"}
    for name, port, url in (("prometheus", PROMETHEUS_PORT, PROMETHEUS_URL), ("traces", QUERY_PORT, TRACES_URL)):
        running = port_open(port)
        lines.append(f"{name}: {url}{notes[name]}" if running else f"{name}: not running (see the infra lines above)")
    return lines

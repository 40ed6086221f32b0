"""What the end-to-end suite (tests/integration/test_e2e.py) asks of a stack, and its two
implementations: a local stack on a component profile (scripts.stack.Stack: processes on this
machine, killed by pid) and the compose stack (scripts.containers.stack.ComposeStack: containers,
killed from inside). A test written against E2EStack runs unchanged on both.

The compose stack publishes only the gateway, on 127.0.0.1: whatever a test reads behind it (a
sidecar's metadata, an inference replica's metrics, a stream of requests straight to one replica)
is read from inside that container with `docker exec`, by the container's own python or node and
with the tokens its environment holds.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import pytest
import yaml

from scripts import credentials, infra
from scripts.containers import engine, images
from scripts.containers.stack import APP_SERVICES, ComposeStack
from scripts.proc import SetupError, free_port, listener_pid
from scripts.stack import Stack
from tests.integration.conftest import launched_with, poll
from tests.integration.test_hot_swap import ROWS, Stream

# The e2e suite's settings for the stack's apps: a rollout's gates read every second.
APP_SETTINGS = {"DAPRML_ROLLOUT_POLL_S": "1"}
COMPOSE_NEEDS = (
    "the compose target needs root (to install docker.io and the compose plugin and start dockerd) "
    "or a running Docker engine with the compose v2 plugin"
)


@dataclass(frozen=True)
class Killed:
    """A process (locally) or a container (compose) killed with SIGKILL, as a crash would."""

    what: str  # "inference app 1", "inference-2-daprd", ...
    at: float  # time.monotonic() of the kill
    before: str  # what changes when it is back: the pid, or the container's start time
    where: str | int  # the port it listened on, or the compose service


class E2EStack(Protocol):
    """A running stack the e2e suite drives: its gateway, what each app's sidecar and each
    inference replica say, and kills of an app or a sidecar that it must survive."""

    @property
    def profile(self) -> str:
        """The components it runs on (components/<profile>): a profile's name, or `compose`."""

    @property
    def gateway_url(self) -> str: ...

    @property
    def topic_prefix(self) -> str: ...

    @property
    def restart_slack_s(self) -> float:
        """How much longer than a local process a killed app or sidecar may take to serve again
        (a container: exit, the restart policy, its start and health check)."""

    def gateway(self, timeout_s: float = 60) -> httpx.Client: ...

    def app_id(self, service: str) -> str: ...

    def replica_count(self, service: str) -> int: ...

    def sidecar_get(self, service: str, path: str) -> tuple[int, str]:
        """GET on the service's (first replica's) sidecar API, with the Dapr API token."""

    def app_get(self, service: str, path: str) -> tuple[int, str]:
        """GET on the service's (first replica's) app, with the app token."""

    def metrics(self, service: str) -> list[str]:
        """Each replica's /metrics text, in replica order."""

    def replica_stream(self, service: str, replica: int, name: str) -> Stream:
        """Predictions of the model asked of one replica's app directly, one after another."""

    def kill_app(self, service: str, replica: int = 0) -> Killed: ...

    def kill_sidecar(self, service: str, replica: int = 0) -> Killed: ...

    def back(self, killed: Killed, timeout_s: float) -> float | None:
        """Seconds from the kill until it serves again; None when it does not within timeout_s."""

    def component_secret_keys(self) -> list[str]:
        """The keys of the secret store the components read their passwords from."""

    def secret_values(self) -> list[str]:
        """Every credential of the stack: none may appear in its logs."""

    def logs(self) -> str:
        """Every log line of its apps and sidecars so far."""

    def stop(self) -> list[str]:
        """Stops it (again: nothing happens); returns what it left behind (ports in use,
        containers, networks, volumes)."""


class LocalStack:
    """scripts.stack.Stack on a component profile: kills by the pid listening on a port."""

    restart_slack_s = 0.0

    def __init__(self, stack: Stack):
        self.stack = stack

    @property
    def profile(self) -> str:
        return self.stack.profile

    @property
    def gateway_url(self) -> str:
        return self.stack.gateway_url

    @property
    def topic_prefix(self) -> str:
        return self.stack.topic_prefix

    def gateway(self, timeout_s: float = 60) -> httpx.Client:
        return self.stack.gateway(timeout_s)

    def app_id(self, service: str) -> str:
        return self.stack.app(service).app_id

    def replica_count(self, service: str) -> int:
        return len(self.stack.replicas(service))

    def sidecar_get(self, service: str, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.stack.app(service).http_port}{path}"
        reply = httpx.get(url, headers=self.stack.sidecar_headers(), timeout=10)
        return reply.status_code, reply.text

    def app_get(self, service: str, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.stack.app(service).app_port}{path}"
        reply = httpx.get(url, headers=self.stack.app_headers(), timeout=10)
        return reply.status_code, reply.text

    def metrics(self, service: str) -> list[str]:
        return [
            httpx.get(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=10).text
            for app in self.stack.replicas(service)
        ]

    def replica_stream(self, service: str, replica: int, name: str) -> Stream:
        app = self.stack.replicas(service)[replica]
        return Stream(f"http://127.0.0.1:{app.app_port}", name, self.stack.app_headers())

    def _kill(self, what: str, port: int) -> Killed:
        pid = listener_pid(port)
        assert pid is not None, f"nothing listens on {port} ({what})"
        os.kill(pid, signal.SIGKILL)
        return Killed(what, time.monotonic(), str(pid), port)

    def kill_app(self, service: str, replica: int = 0) -> Killed:
        app = self.stack.replicas(service)[replica]
        return self._kill(f"{service} app {replica + 1}", app.app_port)

    def kill_sidecar(self, service: str, replica: int = 0) -> Killed:
        app = self.stack.replicas(service)[replica]
        return self._kill(f"{service} daprd {replica + 1}", app.http_port)

    def back(self, killed: Killed, timeout_s: float) -> float | None:
        """Back: a new process listens on the port (the launcher starts it again)."""
        assert isinstance(killed.where, int)
        port = killed.where
        if not poll(lambda: listener_pid(port) not in (None, int(killed.before)), timeout_s):
            return None
        return time.monotonic() - killed.at

    def component_secret_keys(self) -> list[str]:
        return list(credentials.component_secrets(self.stack.workdir))

    def secret_values(self) -> list[str]:
        creds = self.stack.credentials
        values = [creds.admin_key, creds.app_token, creds.dapr_token]
        return with_key_secret(values + list(credentials.component_secrets(self.stack.workdir).values()))

    def logs(self) -> str:
        folders = (self.stack.workdir / ".dapr" / "logs", self.stack.workdir / ".data" / "logs")
        return "\n".join(
            path.read_text(errors="replace") for folder in folders for path in sorted(folder.glob("*.log"))
        )

    def stop(self) -> list[str]:
        return self.stack.stop()


def with_key_secret(values: list[str]) -> list[str]:
    """The credentials (the admin key first) and the admin key's secret part alone (a key is
    <prefix>_<id>_<secret>: its id may be logged, its secret never)."""
    parts = values[0].split("_", 2)
    return values + parts[2:]


class ContainerStream(Stream):
    """A Stream sent from inside a replica's container to its app on 127.0.0.1 (the app's port
    is not published), by a python loop under `docker exec`: one line per answer, timed here
    as it arrives (a little after it was answered). It ends when its stdin closes."""

    LIMIT_S = 600  # a loop whose stdin never closes still ends

    def __init__(self, argv: list[str], name: str):
        super().__init__("", name, {})
        self.argv = argv + ["python", "-u", "-c", _STREAM, name, json.dumps(ROWS), str(self.LIMIT_S)]
        self.proc: subprocess.Popen[str] | None = None

    def _run(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            status, version, runtime = (line.split() + ["-", "-", "-"])[:3]
            code: int | str = int(status) if status.isdigit() else status
            self.answers.append((time.monotonic(), code, int(version) if version.isdigit() else None))
            if code == 200:
                self.runtimes.add(runtime)

    def __enter__(self) -> "ContainerStream":
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=engine.env(),
        )
        super().__enter__()
        return self

    def __exit__(self, *_) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        super().__exit__()


_STREAM = """
import json, os, sys, threading, time, urllib.error, urllib.request
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
name, body, limit_s = sys.argv[1], json.dumps({"records": json.loads(sys.argv[2])}).encode(), float(sys.argv[3])
url = "http://127.0.0.1:%s/api/models/%s/predict" % (os.environ["APP_PORT"], name)
headers = {"content-type": "application/json", "dapr-api-token": os.environ["APP_API_TOKEN"]}
deadline = time.monotonic() + limit_s
while not stop.is_set() and time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=30) as reply:
            answer = json.loads(reply.read())
        print(reply.status, answer.get("version", "-"), answer.get("runtime") or "-", flush=True)
    except urllib.error.HTTPError as error:
        print(error.code, "-", "-", flush=True)
    except OSError as error:
        print(type(error).__name__, "-", "-", flush=True)
        time.sleep(0.1)
"""


@dataclass
class ComposeTarget:
    """The compose stack: kills every process of a container but its init (ComposeStack.kill),
    so that the restart policy starts it again."""

    compose: ComposeStack
    profile: str = "compose"
    topic_prefix: str = ""  # one stack per project: no prefix
    # A container's exit and restart, and its first passing health check (every 5 s), on top of
    # the process's start: measured 6 s for an app or a daprd (twice as much allowed).
    restart_slack_s: float = 10.0

    @property
    def gateway_url(self) -> str:
        return self.compose.gateway_url

    def gateway(self, timeout_s: float = 60) -> httpx.Client:
        return self.compose.gateway(timeout_s)

    def app_id(self, service: str) -> str:
        return service

    def replica_count(self, service: str) -> int:
        return len(APP_SERVICES[service])

    def sidecar_get(self, service: str, path: str) -> tuple[int, str]:
        return self.compose.sidecar_get(APP_SERVICES[service][0], path)

    def app_get(self, service: str, path: str) -> tuple[int, str]:
        return self.compose.app_get(APP_SERVICES[service][0], path)

    def metrics(self, service: str) -> list[str]:
        found = []
        for container in APP_SERVICES[service]:
            status, text = self.compose.app_get(container, "/metrics", port="DAPRML_METRICS_PORT")
            assert status == 200, f"{container} /metrics: {status} {text[:200]}"
            found.append(text)
        return found

    def replica_stream(self, service: str, replica: int, name: str) -> Stream:
        return ContainerStream(self.compose.exec_argv(APP_SERVICES[service][replica], stdin=True), name)

    def _kill(self, container: str) -> Killed:
        at = time.monotonic()
        _, started = self.compose.kill(container)
        return Killed(container, at, started, container)

    def kill_app(self, service: str, replica: int = 0) -> Killed:
        return self._kill(APP_SERVICES[service][replica])

    def kill_sidecar(self, service: str, replica: int = 0) -> Killed:
        return self._kill(f"{APP_SERVICES[service][replica]}-daprd")

    def back(self, killed: Killed, timeout_s: float) -> float | None:
        """Back: the container runs again (started since the kill) and its health check passes."""
        if not poll(lambda: self.compose.back(str(killed.where), killed.before), timeout_s):
            return None
        return time.monotonic() - killed.at

    def component_secret_keys(self) -> list[str]:
        return list(self.compose.component_secrets())

    def secret_values(self) -> list[str]:
        return with_key_secret(self.compose.secret_values())

    def logs(self) -> str:
        return self.compose.logs()

    def stop(self) -> list[str]:
        self.compose.down()
        return self.compose.leftovers()


@contextlib.contextmanager
def local_target(profile: str, workdir: Path, replicas: int = 2) -> Iterator[LocalStack]:
    """A stack on the profile (`replicas` inference replicas) with the servers it needs; all of
    it stopped after, on failure too."""
    try:
        started = infra.up(profile)
    except SetupError as exc:
        pytest.fail(f"the {profile} profile's infrastructure did not start: {exc}", pytrace=False)
    try:
        stack = Stack.isolated(workdir, uuid.uuid4().hex[:8], replicas={"inference": replicas}, profile=profile)
        try:
            with launched_with(**APP_SETTINGS):
                stack.start(timeout_s=240)
        except SetupError as exc:
            pytest.fail(f"the {profile} stack did not become ready:\n{exc}", pytrace=False)
        try:
            yield LocalStack(stack)
        finally:
            stack.stop()
    finally:
        infra.down(started)


@contextlib.contextmanager
def compose_target(workdir: Path) -> Iterator[ComposeTarget]:
    """docker-compose.yml under a project name of its own, the gateway on a free port of
    127.0.0.1, the e2e settings (APP_SETTINGS) in an override file: the engine started when none
    runs (and stopped after), the images built (cold when none existed), the stack up; everything
    removed after, on failure too. Skips, saying what it needs, without root or an engine."""
    if os.geteuid() != 0 and not engine.answers():
        pytest.skip(COMPOSE_NEEDS)
    try:
        found = engine.ensure()
    except SetupError as exc:
        pytest.fail(f"no container engine: {exc}", pytrace=False)
    override = workdir / "e2e.compose.yaml"
    apps = [service for replicas in APP_SERVICES.values() for service in replicas if service != "notifier"]
    override.write_text(yaml.safe_dump({"services": {app: {"environment": APP_SETTINGS} for app in apps}}))
    # The observability profile's UIs published on free ports: the local stack's own Prometheus
    # and Jaeger hold 9090 and 16686 meanwhile.
    ports = {"prometheus_port": free_port(), "jaeger_port": free_port()}
    stack = ComposeStack(workdir, f"daprml-test-{uuid.uuid4().hex[:8]}", free_port(), overrides=(override,), **ports)
    try:
        cold = images.missing() == [image.name for image in images.IMAGES]
        t0 = time.monotonic()
        images.build_all()
        sizes = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in images.sizes().items())
        print(f"\ne2e[compose]: images built in {time.monotonic() - t0:.0f}s ({'cold' if cold else 'warm'}): {sizes}")
        up_s = stack.up()
        print(f"e2e[compose]: {len(stack.containers())} containers ready in {up_s:.1f}s (project {stack.project})")
        yield ComposeTarget(stack)
    except SetupError as exc:
        pytest.fail(f"the compose stack did not come up:\n{exc}", pytrace=False)
    finally:
        stack.down()
        if found.started:
            engine.stop_if_ours()
            print("e2e[compose]: stopped the engine this run started")

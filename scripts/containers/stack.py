"""docker-compose.yml run under a project name of its own: what `make compose-up` starts and
what the compose tests drive.

Credentials are the local stack's (scripts/credentials.py makes them in <workdir>/.data when
missing: the admin key, the app and Dapr API tokens, the servers' passwords), copied for compose
into <workdir>/.data/compose/: a folder only its owner may enter, holding the secret files compose
mounts into the containers (readable inside them by the images' non-root users) and the env file
with the tokens and the published port. Nothing of it is in the repository.
"""

import functools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts import credentials
from scripts.containers import engine, images
from scripts.infra.observability import OTLP_GRPC_PORT, OTLP_HTTP_PORT, PROMETHEUS_PORT, QUERY_PORT
from scripts.infra.observability import enabled as observability_enabled
from scripts.proc import ROOT, SetupError, port_open, wait_until, who_listens

COMPOSE_FILE = ROOT / "docker-compose.yml"
# The services of docker-compose.yml that run an app (two inference replicas), by app id.
APP_SERVICES = {
    "gateway": ["gateway"],
    "ingestion": ["ingestion"],
    "training": ["training"],
    "registry": ["registry"],
    "inference": ["inference", "inference-2"],
    "notifier": ["notifier"],
    "monitor": ["monitor"],
}
STOP_TIMEOUT_S = 10
# The apps whose image has node, not python, to run a request from inside their container.
NODE_APPS = {"notifier"}


def _write(path: Path, text: str) -> None:
    """Readable by the containers' users (a secret file is bind-mounted as it is); its folder
    keeps everyone else on the host out."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.chmod(0o644)
    partial.rename(path)


@dataclass
class ComposeStack:
    workdir: Path = ROOT
    project: str = "daprml"
    gateway_port: int = 8000
    # Compose files merged over docker-compose.yml (a test's settings, say), in this order.
    overrides: tuple[Path, ...] = ()
    # The observability profile (Prometheus, Jaeger; on unless DAPRML_OBSERVABILITY=off) and
    # the ports their UIs are published on, on 127.0.0.1.
    observability: bool = field(default_factory=observability_enabled)
    prometheus_port: int = PROMETHEUS_PORT
    jaeger_port: int = QUERY_PORT
    # Container ids by service: a restart keeps a container's id; `up` and `down` forget them.
    _ids: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def secrets_dir(self) -> Path:
        return self.workdir / ".data" / "compose"

    def published(self) -> list[tuple[str, int, str]]:
        """What the stack publishes on 127.0.0.1: (what, port, the setting that moves it)."""
        ports = [("the gateway", self.gateway_port, "DAPRML_GATEWAY_PORT")]
        if self.observability:
            ports += [
                ("Prometheus' UI", self.prometheus_port, "DAPRML_PROMETHEUS_PORT"),
                ("Jaeger's UI", self.jaeger_port, "DAPRML_JAEGER_PORT"),
            ]
        return ports

    def check_ports(self) -> None:
        """Refuses, before anything starts, a port another process holds (`make up`'s stack
        holds 8000, 9090 and 16686): compose would otherwise fail halfway, on the first one.
        The engine's own proxy is this stack already running, and may stay."""
        for what, port, setting in self.published():
            if port_open(port) and "docker-proxy" not in (holder := who_listens(port)):
                raise SetupError(
                    f"port {port} ({what}) is taken by {holder}: stop it (`make down` stops the local stack) "
                    f"or set {setting} to a free port"
                )

    @property
    def env_file(self) -> Path:
        return self.secrets_dir / "compose.env"

    @functools.cached_property
    def credentials(self) -> credentials.Credentials:
        return credentials.ensure(self.workdir)

    @property
    def admin_key(self) -> str:
        return self.credentials.admin_key

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def gateway(self, timeout_s: float = 60) -> httpx.Client:
        """A client of the gateway that sends the admin key."""
        return httpx.Client(
            base_url=self.gateway_url, timeout=timeout_s, headers=credentials.auth_headers(self.admin_key)
        )

    def secret_values(self) -> list[str]:
        """Every credential of the stack: none may appear in its logs."""
        creds = self.credentials
        values = [creds.admin_key, creds.app_token, creds.dapr_token]
        return values + list(credentials.component_secrets(self.workdir).values())

    def component_secrets(self) -> dict[str, str]:
        """The secret store the components read (componentsecrets): only Redis's password, the
        compose stack runs no other server."""
        return {"redis-password": credentials.component_secrets(self.workdir)["redis-password"]}

    def prepare(self) -> Path:
        """The secret files and the env file (made again each time: the credentials may have
        changed); returns the env file."""
        creds = self.credentials
        passwords = self.component_secrets()
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        _write(self.secrets_dir / "secrets.json", (self.workdir / ".data" / "secrets.json").read_text())
        _write(self.secrets_dir / "component-secrets.json", json.dumps(passwords))
        _write(self.secrets_dir / "redis-password", passwords["redis-password"])
        _write(
            self.env_file,
            f"APP_API_TOKEN={creds.app_token}\nDAPR_API_TOKEN={creds.dapr_token}\n"
            f"DAPRML_GATEWAY_PORT={self.gateway_port}\nDAPRML_SECRETS_DIR={self.secrets_dir}\n"
            f"DAPRML_VERSION={images.version()}\n{self._observability_env()}",
        )
        self.env_file.chmod(0o600)
        return self.env_file

    def _observability_env(self) -> str:
        """The env file's lines that wire the apps, their sidecars and the console to the
        observability profile's Prometheus and Jaeger (none when it is off)."""
        if not self.observability:
            return ""
        # The servers by their compose names, on the ports they listen on locally too.
        wiring = {
            "COMPOSE_PROFILES": "observability",
            "DAPRML_TRACES_OTLP_HTTP": f"http://jaeger:{OTLP_HTTP_PORT}",
            "DAPRML_TRACES_OTLP_GRPC": f"jaeger:{OTLP_GRPC_PORT}",
            "DAPRML_PROMETHEUS_URL": f"http://prometheus:{PROMETHEUS_PORT}",
            "DAPRML_TRACES_URL": f"http://jaeger:{QUERY_PORT}",
            "DAPRML_TRACES_UI_URL": f"http://127.0.0.1:{self.jaeger_port}",
            "DAPRML_PROMETHEUS_PORT": str(self.prometheus_port),
            "DAPRML_JAEGER_PORT": str(self.jaeger_port),
        }
        return "".join(f"{name}={value}\n" for name, value in wiring.items())

    def command(self, *args: str) -> list[str]:
        return [
            "docker",
            "compose",
            "--project-directory",
            str(ROOT),
            "--file",
            str(COMPOSE_FILE),
            *(arg for path in self.overrides for arg in ("--file", str(path))),
            "--project-name",
            self.project,
            "--env-file",
            str(self.env_file),
            *(("--profile", "observability") if self.observability else ()),
            *args,
        ]

    def compose(self, *args: str, timeout_s: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        return engine.run(self.command(*args), timeout_s=timeout_s, check=check, cwd=ROOT)

    def up(self, timeout_s: float = 300) -> float:
        """Starts the stack from images built before (images.build_all) and waits until every
        container is healthy and the gateway reaches every service (both inference replicas);
        returns the seconds it took. A failure says which services are not healthy."""
        self.prepare()
        self._ids.clear()
        t0 = time.monotonic()
        done = self.compose(
            "up",
            "--detach",
            "--no-build",
            "--wait",
            "--wait-timeout",
            str(int(timeout_s)),
            check=False,
            timeout_s=timeout_s + 60,
        )
        if done.returncode != 0:
            raise SetupError(f"compose up failed: {done.stderr.strip()[-600:]}\n{self.unhealthy_report()}")
        left = max(30.0, timeout_s - (time.monotonic() - t0))
        if not wait_until(self.ready, left, interval_s=1):
            raise SetupError(f"the gateway does not reach every service within {left:.0f}s: {self.status_line()}")
        return time.monotonic() - t0

    def status(self) -> dict:
        with self.gateway(15) as gateway:
            reply = gateway.get("/api/status")
        reply.raise_for_status()
        return reply.json()

    def ready(self) -> bool:
        """Every service reachable through the gateway, every inference replica heard from."""
        try:
            report = self.status()
        except httpx.HTTPError:
            return False
        services = {s["service"]: s for s in report["services"]}
        if not all(s["reachable"] for s in services.values()):
            return False
        replicas = [i for i in services.get("inference", {}).get("instances", []) if i["up"]]
        return len(replicas) >= len(APP_SERVICES["inference"])

    def status_line(self) -> str:
        try:
            report = self.status()
        except httpx.HTTPError as exc:
            return f"gateway: {exc}"
        return "; ".join(f"{s['service']}: {'ok' if s['reachable'] else s['error']}" for s in report["services"])

    def sidecar_get(self, service: str, path: str) -> tuple[int, str]:
        """GET `path` on the sidecar of an app's container, from inside that container (no
        sidecar port is published), with the Dapr API token the container holds (none is passed
        on a command line); returns the status and the body."""
        return self._get_inside(service, "DAPRML_DAPR_HOST", "DAPR_HTTP_PORT", path, "DAPR_API_TOKEN")

    def app_get(self, service: str, path: str, port: str = "APP_PORT") -> tuple[int, str]:
        """GET `path` on the app of the service's container (or its metrics port, `port`
        DAPRML_METRICS_PORT), from inside it, with the app token its sidecar sends."""
        return self._get_inside(service, "127.0.0.1", port, path, "APP_API_TOKEN")

    def _get_inside(self, service: str, host: str, port: str, path: str, token: str) -> tuple[int, str]:
        """`host`, `port` and `token` name variables of the container's environment (the host
        may be an address); the container's own python or node sends the request."""
        program = ["node", "-e", _NODE_GET] if service in NODE_APPS else ["python", "-c", _PYTHON_GET]
        done = engine.run(self.exec_argv(service, *program, host, port, path, token), timeout_s=60)
        status, _, body = done.stdout.partition("\n")
        return int(status), body

    def exec_argv(self, service: str, *argv: str, stdin: bool = False) -> list[str]:
        """`docker exec` of a program in the service's container (as its image's user; stdin
        attached when asked)."""
        return ["docker", "exec", *(["--interactive"] if stdin else []), self.container(service), *argv]

    def containers(self) -> list[dict]:
        """Every container of the project (running or not), as `docker compose ps` reports them."""
        done = self.compose("ps", "--all", "--format", "json", timeout_s=60)
        return list(_json_lines(done.stdout))

    def unhealthy_report(self) -> str:
        try:
            rows = self.containers()
        except SetupError as exc:
            return str(exc)
        bad = [r for r in rows if r.get("Health") not in ("healthy", "") or r.get("State") != "running"]
        lines = [f"  {r['Service']}: {r.get('State')} {r.get('Health') or ''}".rstrip() for r in bad]
        for row in bad[:4]:
            logs = self.compose("logs", "--no-color", "--tail", "15", row["Service"], check=False).stdout
            lines.append(f"  {row['Service']} logs:\n" + "\n".join(f"    {line}" for line in logs.splitlines()))
        return "\n".join(lines)

    def container(self, service: str) -> str:
        if service in self._ids:
            return self._ids[service]
        ids = self.compose("ps", "--all", "--quiet", service, timeout_s=60).stdout.split()
        if len(ids) != 1:
            raise SetupError(f"{service}: {len(ids)} containers, not one")
        self._ids[service] = ids[0]
        return ids[0]

    def inspect(self, container: str) -> dict:
        done = engine.run(["docker", "inspect", container], timeout_s=30)
        return json.loads(done.stdout)[0]

    def kill(self, service: str) -> tuple[str, str]:
        """Kills every process of the service's container but its init with SIGKILL, as a crash
        would; the init then exits and the restart policy starts the container again. Returns
        its id and the start time it had. (`docker kill` would not do: the engine counts it as
        a stop asked for, and restarts nothing.)"""
        container = self.container(service)
        started = self.inspect(container)["State"]["StartedAt"]
        engine.run(["docker", "exec", "--user", "0", container, "sh", "-c", "kill -KILL -1"], timeout_s=30, check=False)
        return container, started

    def back(self, service: str, started_before: str) -> bool:
        """Whether the service's container runs again since a kill, and is healthy."""
        state = self.inspect(self.container(service))["State"]
        healthy = state.get("Health", {}).get("Status", "healthy") == "healthy"
        return state["Running"] and state["StartedAt"] != started_before and healthy

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--timestamps", timeout_s=300).stdout

    def down(self) -> None:
        """Stops and removes the containers, networks and volumes of the project."""
        if not self.env_file.exists():
            self.prepare()  # compose reads the env file even to stop
        self._ids.clear()
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", str(STOP_TIMEOUT_S), timeout_s=300)

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes of the project still on the engine."""
        label = f"label=com.docker.compose.project={self.project}"
        found = []
        for kind, argv in (
            ("container", ["docker", "ps", "--all", "--quiet", "--filter", label]),
            ("network", ["docker", "network", "ls", "--quiet", "--filter", label]),
            ("volume", ["docker", "volume", "ls", "--quiet", "--filter", label]),
        ):
            found += [f"{kind} {name}" for name in engine.run(argv, timeout_s=60).stdout.split()]
        return found


# A GET from inside a container: host (a variable's name or an address), port and token (the
# names of variables) as arguments; prints the status, then the body.
_PYTHON_GET = """
import os, sys, urllib.error, urllib.request
host, port, path, token = sys.argv[1:5]
url = "http://%s:%s%s" % (os.environ.get(host, host), os.environ[port], path)
request = urllib.request.Request(url, headers={"dapr-api-token": os.environ[token]})
try:
    reply = urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as error:
    reply = error
print(reply.status)
print(reply.read().decode())
"""
_NODE_GET = """
const [host, port, path, token] = process.argv.slice(1);
const url = `http://${process.env[host] ?? host}:${process.env[port]}${path}`;
fetch(url, {headers: {'dapr-api-token': process.env[token]}, signal: AbortSignal.timeout(10000)})
  .then(async (reply) => console.log(`${reply.status}\\n${await reply.text()}`))
  .catch((error) => { console.error(String(error)); process.exit(1); });
"""


def _json_lines(text: str) -> Iterator[dict]:
    """compose v2 prints one JSON object per line (older versions: one array)."""
    text = text.strip()
    if text.startswith("["):
        yield from json.loads(text)
        return
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def from_env() -> ComposeStack:
    """The stack `make compose-up` runs: the project's own folder, project `daprml`, the gateway
    on DAPRML_GATEWAY_PORT (8000 by default), Prometheus' and Jaeger's UIs on
    DAPRML_PROMETHEUS_PORT (9090) and DAPRML_JAEGER_PORT (16686)."""
    return ComposeStack(
        ROOT,
        os.environ.get("DAPRML_COMPOSE_PROJECT", "daprml"),
        int(os.environ.get("DAPRML_GATEWAY_PORT", "8000")),
        prometheus_port=int(os.environ.get("DAPRML_PROMETHEUS_PORT", PROMETHEUS_PORT)),
        jaeger_port=int(os.environ.get("DAPRML_JAEGER_PORT", QUERY_PORT)),
    )

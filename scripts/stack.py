"""The services, each with its own daprd, started from dapr.yaml by scripts/launch.py, which
keeps every daprd and app running (the dapr CLI would start each once).

    python -m scripts.stack up         start infra and the stack in the background; return when ready
    python -m scripts.stack down       stop everything `up` started; report any port left in use
    python -m scripts.stack status     ask the gateway which services answer through Dapr
    python -m scripts.stack roundtrip  run the round trip check through the gateway and print it
    python -m scripts.stack run        the main job: up (if needed), round trip, load the sample
                                      datasets, wait for their champions, predict with each
                                      through the gateway (JSON and OIP v2), then down again

The components come from the profile DAPRML_PROFILE names (default `local`; components/<profile>,
scripts/profiles.py); infra starts the servers that profile needs.

Tests use Stack.isolated(): the same run file with free ports, app ids suffixed by a run id,
topics prefixed by it, and a working folder of its own, so a test run never meets a developer's
running stack.

The run file is made by scripts/runfile.py; what `run` shows once the stack answers is
scripts/walkthrough.py. While a stack runs, Prometheus scrapes it from a target file of its own
(scripts/infra/observability.py), unless DAPRML_OBSERVABILITY=off.
"""

import functools
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from scripts import credentials, infra, profiles, runfile
from scripts.infra import observability
from scripts.proc import (
    DATA,
    ROOT,
    SetupError,
    port_open,
    read_env_file,
    read_pid,
    require_free,
    require_linux,
    start,
    stop,
    tail,
    wait_until,
)


@dataclass(frozen=True)
class App:
    app_id: str
    app_port: int
    http_port: int
    grpc_port: int
    metrics_port: int | None = None  # the app's /metrics, when it serves one

    @property
    def service(self) -> str:
        # The service's module is the last part of its command: python -m services.<name>
        return self.app_id.split("-", 1)[0]


class Stack:
    def __init__(self, run_file: Path, workdir: Path):
        self.run_file, self.workdir = run_file, workdir
        spec = yaml.safe_load(run_file.read_text())
        self.apps = [
            App(a["appID"], a["appPort"], a["daprHTTPPort"], a["daprGRPCPort"], _metrics_port(a)) for a in spec["apps"]
        ]
        self.pidfile = workdir / ".data" / "stack.pid"
        # What the services put before every topic name (ServiceSettings.topic_prefix).
        self.topic_prefix = spec["common"].get("env", {}).get("DAPRML_TOPIC_PREFIX", "")
        self.log = workdir / ".data" / "logs" / "dapr-run.log"
        # The component profile it runs on (written next to the run file by runfile.generate).
        marker = run_file.parent / "profile"
        self.profile = marker.read_text().strip() if marker.exists() else profiles.current()
        # Prometheus scrapes it from .data/prometheus/targets/<name>.json while it runs.
        self.targets = observability.stack_targets(spec, runfile.METRICS_ENV)

    @property
    def name(self) -> str:
        """`repo` for the project's own stack (make up); otherwise its topic prefix (the run
        id) and a digest of its folder, since the one-app stacks of a test run share the
        run's prefix."""
        if self.workdir.resolve() == ROOT:
            return "repo"
        digest = hashlib.sha256(str(self.workdir.resolve()).encode()).hexdigest()[:10]
        return f"{self.topic_prefix.rstrip('.') or 'stack'}-{digest}"

    def publish_targets(self) -> None:
        """Tells Prometheus (file_sd) what to scrape of this stack, unless observability is off."""
        if observability.enabled():
            observability.write_targets(self.name, self.targets)

    @classmethod
    def repo(cls, profile: str | None = None) -> "Stack":
        """The project's run file as it is (ports, app ids), run from the project folder, on the
        profile asked for (DAPRML_PROFILE by default)."""
        run_file = runfile.generate(
            ROOT, ROOT / ".data" / "run", lambda app_id: app_id, fixed_ports=True, profile=profile
        )
        return cls(run_file, ROOT)

    @classmethod
    def isolated(
        cls, workdir: Path, run_id: str, replicas: dict[str, int] | None = None, profile: str | None = None
    ) -> "Stack":
        """The project's run file with free ports, app ids '<service>-<run_id>', topics
        '<run_id>.<topic>' and its own working folder (logs, blobs, secrets file); same
        components, config and commands. `replicas` runs that many copies of a service, each
        with its own sidecar and ports under the same app id (as a Kubernetes Deployment would);
        service invocation spreads calls over them.

        It shares the developer's Redis: state keys are kept apart by the app ids (Dapr prefixes
        them), pub/sub streams by the topic prefix; without it a test run and a running `make up`
        would each receive the other's events. (A Redis database of its own per run, the
        component's redisDB, was not worth it: 16 databases, nothing to hand them out to
        concurrent runs, and a copy of the components to keep in step.) The same holds for the
        servers of the other profiles (`profile`, DAPRML_PROFILE by default)."""
        # The replicas' ports as a run file made before in this folder chose them (made again
        # for a running stack, it must name the same ports).
        before = runfile.chosen_ports(workdir / "dapr.yaml")
        run_file = runfile.generate(
            workdir, workdir, lambda app_id: f"{app_id}-{run_id}", topic_prefix=f"{run_id}.", profile=profile
        )
        stack = cls(run_file, workdir)
        if not replicas:
            return stack
        counts = {f"{service}-{run_id}": count for service, count in replicas.items()}
        runfile.add_replicas(stack.run_file, counts, before[len(stack.apps) :])
        return cls(stack.run_file, workdir)

    @functools.cached_property
    def credentials(self) -> credentials.Credentials:
        """The stack's admin key and tokens, made on first use (scripts/credentials.py) and then
        kept: tests ask for headers in their polling loops."""
        return credentials.ensure(self.workdir)

    @property
    def admin_key(self) -> str:
        return self.credentials.admin_key

    def gateway(self, timeout_s: float = 60) -> httpx.Client:
        """A client of the gateway that sends the admin key."""
        return httpx.Client(
            base_url=self.gateway_url, timeout=timeout_s, headers=credentials.auth_headers(self.admin_key)
        )

    def sidecar_headers(self) -> dict[str, str]:
        """What a call to a sidecar's API (or an app's own port) must carry."""
        return {"dapr-api-token": self.credentials.dapr_token}

    def app_headers(self) -> dict[str, str]:
        return {"dapr-api-token": self.credentials.app_token}

    def app(self, service: str) -> App:
        return next(a for a in self.apps if a.service == service)

    def replicas(self, service: str) -> list[App]:
        return [a for a in self.apps if a.service == service]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.app('gateway').app_port}"

    def running(self) -> bool:
        return read_pid(self.pidfile) is not None

    def _env(self) -> dict[str, str]:
        env = os.environ | read_env_file(DATA / "dapr.env")
        # The run file's commands say `python`: make that this project's interpreter.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["DAPR_HOST_IP"] = "127.0.0.1"
        anchors = infra.trust_anchors()
        if anchors.exists():  # sentry's root: each daprd checks its peers' certificates with it
            env["DAPR_TRUST_ANCHORS"] = anchors.read_text()
        return env | self.credentials.env()

    def _ready(self, app: App) -> bool:
        """Ready: the app says its sidecar answers, and the sidecar passes calls to the app
        (which it does only once its app health check has passed and the app is registered
        for name resolution)."""
        urls = (
            f"http://127.0.0.1:{app.app_port}/readyz",
            f"http://127.0.0.1:{app.http_port}/v1.0/invoke/{app.app_id}/method/healthz",
        )
        try:
            return all(httpx.get(url, timeout=2, headers=self.sidecar_headers()).status_code == 200 for url in urls)
        except httpx.HTTPError:
            return False

    def start(self, timeout_s: float = 90) -> None:
        if self.running():
            self.publish_targets()
            print(f"stack: already running (pid {read_pid(self.pidfile)}); `make down` stops it")
            return
        for app in self.apps:
            require_free(app.app_port, f"{app.app_id} app")
            require_free(app.http_port, f"{app.app_id} sidecar HTTP")
            require_free(app.grpc_port, f"{app.app_id} sidecar gRPC")
            if app.metrics_port:
                require_free(app.metrics_port, f"{app.app_id} metrics")
        self.publish_targets()
        env = self._env()
        t0 = time.monotonic()
        start([sys.executable, "-m", "scripts.launch", str(self.run_file)], self.log, self.pidfile, cwd=ROOT, env=env)
        pending = list(self.apps)

        def progress() -> bool:
            pending[:] = [a for a in pending if not self._ready(a)]
            return not pending or not self.running()

        wait_until(progress, timeout_s, interval_s=0.5)
        if pending:
            report = self._failure_report(pending, timeout_s)
            self.stop()
            raise SetupError(report)
        print(
            f"stack: {len(self.apps)} services ready in {time.monotonic() - t0:.1f}s "
            f"(logs in {self.workdir / '.dapr' / 'logs'})"
        )

    def _failure_report(self, pending: list[App], timeout_s: float) -> str:
        why = "the launcher exited" if not self.running() else f"not ready within {timeout_s:.0f}s"
        parts = [f"{', '.join(a.app_id for a in pending)}: {why}", f"  launcher ({self.log}):\n{tail(self.log, 15)}"]
        for app in pending:
            for kind in ("daprd", "app"):
                logs = sorted((self.workdir / ".dapr" / "logs").glob(f"{app.app_id}_{kind}_*.log"))
                if logs:
                    parts.append(f"  {app.app_id} {kind} ({logs[-1]}):\n{tail(logs[-1], 15)}")
        return "\n".join(parts)

    def stop(self) -> list[str]:
        """Stops the launcher and everything it started; returns the ports still in use after."""
        stopped = stop(self.pidfile)
        observability.remove_targets(self.name)
        ports = [(p, a.app_id) for a in self.apps for p in (a.app_port, a.http_port, a.grpc_port)]
        wait_until(lambda: not any(port_open(p) for p, _ in ports), 10)
        left = [f"{p} ({app_id})" for p, app_id in ports if port_open(p)]
        if stopped:
            print("stack: stopped" + (f"; ports still in use: {', '.join(left)}" if left else ""))
        return left

    def status(self) -> dict:
        with self.gateway(15) as gateway:
            reply = gateway.get("/api/status")
        reply.raise_for_status()
        return reply.json()

    def roundtrip(self) -> dict:
        with self.gateway() as gateway:
            reply = gateway.post("/api/roundtrip")
        reply.raise_for_status()
        return reply.json()


def print_status(report: dict) -> None:
    for s in report["services"]:
        mark = "ok  " if s["reachable"] else "DOWN"
        instances = s.get("instances", [])
        up = sum(i["up"] for i in instances)
        count = f"{up}/{len(instances)} instances up" if instances else ""
        print(
            f"  {mark} {s['service']:10} app id {s['app_id']:12} daprd {s['runtime_version'] or '-':8} "
            f"{count:16} {s['error'] or ''}".rstrip()
        )
        for i in instances:
            if not i["up"]:
                print(f"       DOWN instance {i['instance']}: {i['error']}")


def print_roundtrip(report: dict) -> None:
    print(f"round trip {report['run_id']}:")
    for s in report["steps"]:
        print(f"  {'ok  ' if s['ok'] else 'FAIL'} {s['name']:13} {s['detail']}")
    print("round trip: " + ("every building block answered" if report["ok"] else "FAILED (see above)"))


def up(stack: Stack) -> None:
    print(f"stack: component profile {stack.profile} (components/{stack.profile}; {profiles.ENV} chooses)")
    started = infra.up(stack.profile)
    try:
        stack.start()
    except SetupError:
        infra.down(started)  # a failed start leaves nothing behind
        raise
    print_status(stack.status())
    for line in observability.summary():
        print(line)
    print(f"stack: gateway at {stack.gateway_url} (API docs at {stack.gateway_url}/docs); `make down` stops it")
    print(f"stack: web console at {stack.gateway_url}/ (sign in with the key below)")
    print(
        f"stack: the development admin key is in {stack.workdir / '.data' / 'admin-key'}; send it as "
        '-H "Authorization: Bearer $(cat .data/admin-key)"'
    )


def down(stack: Stack) -> int:
    left = stack.stop()
    infra.down()
    if left:
        print(f"stack: ports still in use after stop: {', '.join(left)}", file=sys.stderr)
        return 1
    print("stack: nothing left running")
    return 0


def run(stack: Stack) -> int:
    from scripts import walkthrough  # pandas and scikit-learn: imported only when used

    was_running = stack.running()
    print(f"stack: component profile {stack.profile} (components/{stack.profile}; {profiles.ENV} chooses)")
    started = infra.up(stack.profile)
    try:
        stack.start()
        print_status(stack.status())
        report = stack.roundtrip()
        print_roundtrip(report)
        names = walkthrough.load_samples(stack)
        models_ok = walkthrough.show_models(stack, names)
        predictions_ok = walkthrough.show_predictions(stack, names)
        monitoring_ok = walkthrough.show_monitoring(stack) if walkthrough.MONITORED in names else True
    finally:
        if not was_running:
            stack.stop()
            infra.down(started)
    if not was_running:
        print("Run `make up` to keep the stack running, then open http://127.0.0.1:8000/docs.")
    return 0 if report["ok"] and models_ok and predictions_ok and monitoring_ok else 1


def main(argv: list[str]) -> int:
    try:
        stack = Stack.repo()  # on the profile DAPRML_PROFILE names (default local)
    except SetupError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    commands = {
        "up": lambda: up(stack),
        "down": lambda: down(stack),
        "status": lambda: print_status(stack.status()),
        "roundtrip": lambda: print_roundtrip(stack.roundtrip()),
        "run": lambda: run(stack),
    }
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__)
        return 2
    try:
        require_linux()
        return commands[argv[0]]() or 0
    except SetupError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"stack: error: the gateway did not answer ({exc}); is the stack up? (make up)", file=sys.stderr)
        return 1


def _metrics_port(app: dict[str, Any]) -> int | None:
    port = (app.get("env") or {}).get(runfile.METRICS_ENV)
    return int(port) if port else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The six services, each with its own daprd, started from dapr.yaml by scripts/launch.py, which
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
"""

import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from scripts import credentials, infra, profiles
from scripts.proc import (
    DATA,
    ROOT,
    SetupError,
    free_port,
    port_open,
    read_env_file,
    read_pid,
    require_free,
    require_linux,
    start,
    stop,
    tail,
    wait_until,
    write_if_changed,
)

RUN_FILE = ROOT / "dapr.yaml"
# The ports of one app in the run file (dapr.yaml fixes each, all below 32768).
PORT_FIELDS = ("appPort", "daprHTTPPort", "daprGRPCPort", "daprInternalGRPCPort", "metricsPort")
ACCESS_FILE = ROOT / "dapr" / "access.yaml"
TRUST_DOMAIN = "public"  # what daprd asks sentry for when its Configuration names none


@dataclass(frozen=True)
class App:
    app_id: str
    app_port: int
    http_port: int
    grpc_port: int

    @property
    def service(self) -> str:
        # The service's module is the last part of its command: python -m services.<name>
        return self.app_id.split("-", 1)[0]


class Stack:
    def __init__(self, run_file: Path, workdir: Path):
        self.run_file, self.workdir = run_file, workdir
        spec = yaml.safe_load(run_file.read_text())
        self.apps = [App(a["appID"], a["appPort"], a["daprHTTPPort"], a["daprGRPCPort"]) for a in spec["apps"]]
        self.pidfile = workdir / ".data" / "stack.pid"
        # What the services put before every topic name (ServiceSettings.topic_prefix).
        self.topic_prefix = spec["common"].get("env", {}).get("DAPRML_TOPIC_PREFIX", "")
        self.log = workdir / ".data" / "logs" / "dapr-run.log"
        # The component profile it runs on (written next to the run file by `generated`).
        marker = run_file.parent / "profile"
        self.profile = marker.read_text().strip() if marker.exists() else profiles.current()

    @classmethod
    def repo(cls, profile: str | None = None) -> "Stack":
        """The project's run file as it is (ports, app ids), run from the project folder, on the
        profile asked for (DAPRML_PROFILE by default)."""
        return cls.generated(ROOT, ROOT / ".data" / "run", lambda app_id: app_id, fixed_ports=True, profile=profile)

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
        before = _chosen_ports(workdir / "dapr.yaml")
        stack = cls.generated(
            workdir, workdir, lambda app_id: f"{app_id}-{run_id}", topic_prefix=f"{run_id}.", profile=profile
        )
        previous = before[len(stack.apps) :]
        if not replicas:
            return stack
        spec = yaml.safe_load(stack.run_file.read_text())
        for service, count in replicas.items():
            first = next(a for a in spec["apps"] if a["appID"] == f"{service}-{run_id}")
            for _ in range(count - 1):
                spec["apps"].append(first | (previous.pop(0) if previous else free_app_ports()))
        write_if_changed(stack.run_file, yaml.safe_dump(spec, sort_keys=False))
        return cls(stack.run_file, workdir)

    @classmethod
    def generated(
        cls,
        workdir: Path,
        target: Path,
        rename: Callable[[str], str],
        fixed_ports: bool = False,
        topic_prefix: str = "",
        profile: str | None = None,
    ) -> "Stack":
        """The run file the dapr CLI gets, made from dapr.yaml into `target`: app ids renamed,
        paths absolute, apps run in `workdir`, the profile's components (components/<profile>
        in place of dapr.yaml's components/local) copied with their scopes renamed, and a
        Configuration per app whose access control admits only the callers dapr/access.yaml
        names for it (the callee's sidecar enforces it, so each app needs its own)."""
        # Ports chosen for a run file made before in this folder are kept: made again for a
        # running stack (make up twice), it must name the ports that stack listens on.
        chosen = _chosen_ports(target / "dapr.yaml")
        spec = yaml.safe_load(RUN_FILE.read_text())
        common = spec["common"]
        env = common.setdefault("env", {})
        if topic_prefix:
            env["DAPRML_TOPIC_PREFIX"] = topic_prefix
        profile = profiles.current(profile)
        # dapr.yaml names the local profile's folder: the chosen profile's takes its place.
        default = (profiles.FOLDER / profiles.DEFAULT).resolve()
        sources = [
            profiles.folder(profile) if (ROOT / p).resolve() == default else ROOT / p for p in common["resourcesPaths"]
        ]
        common["resourcesPaths"] = copy_component_folders(sources, target, lambda app_id: [rename(app_id)])
        base = yaml.safe_load((ROOT / common.pop("configFilePath")).read_text())
        callers = yaml.safe_load(ACCESS_FILE.read_text()) or {}
        for app in spec["apps"]:
            service = app["appID"]
            config = target / "config" / f"{service}.yaml"
            write_config(base, [rename(c) for c in callers.get(service, [])], config)
            app.update(
                appID=rename(service),
                appDirPath=str(workdir),
                configFilePath=str(config),
                # The apps run in the working folder: a script named by its path in the project
                # (node services/notifier/server.js) is named by its full path instead.
                command=[str(ROOT / arg) if (ROOT / arg).is_file() else arg for arg in app["command"]],
            )
            if not fixed_ports:
                app.update(chosen.pop(0) if chosen else free_app_ports())
            env[f"DAPRML_{service.upper()}_APP_ID"] = app["appID"]
        run_file = target / "dapr.yaml"
        write_if_changed(run_file, yaml.safe_dump(spec, sort_keys=False))
        write_if_changed(target / "profile", profile + "\n")
        return cls(run_file, workdir)

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
            print(f"stack: already running (pid {read_pid(self.pidfile)}); `make down` stops it")
            return
        for app in self.apps:
            require_free(app.app_port, f"{app.app_id} app")
            require_free(app.http_port, f"{app.app_id} sidecar HTTP")
            require_free(app.grpc_port, f"{app.app_id} sidecar gRPC")
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


def _chosen_ports(run_file: Path) -> list[dict[str, int]]:
    """The ports of each app of a run file made before, in order (none when there is none)."""
    try:
        spec = yaml.safe_load(run_file.read_text())
    except OSError:
        return []
    return [{name: app[name] for name in PORT_FIELDS} for app in spec["apps"]]


def free_app_ports() -> dict[str, int]:
    """Every port one app and its daprd listen on, free and below the ephemeral range. Left to
    the dapr CLI, a daprd's internal gRPC and metrics ports come from that range, where a
    sidecar's own outgoing connection can take one before daprd binds it (one did: that daprd
    exited and its stack never became ready)."""
    return {name: free_port() for name in PORT_FIELDS}


def write_config(base: dict, callers: list[str], target: Path) -> None:
    """The Configuration `base` with access control: service invocation denied by default,
    allowed from each of `callers` (identified by the SPIFFE id in its mTLS certificate)."""
    config = dict(base, spec=dict(base["spec"]))
    config["spec"]["accessControl"] = {
        "defaultAction": "deny",
        "trustDomain": TRUST_DOMAIN,
        "policies": [
            {"appId": caller, "defaultAction": "allow", "trustDomain": TRUST_DOMAIN, "namespace": "default"}
            for caller in callers
        ],
    }
    write_if_changed(target, yaml.safe_dump(config, sort_keys=False))


def copy_component_folders(sources: list[Path], target: Path, scoped: Callable[[str], list[str]]) -> list[str]:
    """Copies each folder of component files to target/components/<i>, scopes renamed by
    `scoped`; returns the copies' paths, for the run file's resourcesPaths. Files a profile chosen
    before left there are removed; a file whose content does not change is not touched (a
    running daprd watches them)."""
    copies = []
    for i, source in enumerate(sources):
        copy = target / "components" / str(i)
        written = copy_components(source, copy, scoped)
        for stale in set(copy.glob("*.yaml")) - written:
            stale.unlink()
        copies.append(str(copy))
    return copies


def copy_components(source: Path, target: Path, scoped: Callable[[str], list[str]]) -> set[Path]:
    """Copies a folder of component files, each app id in their scopes replaced by the ids
    `scoped` gives for it; returns the files it made."""
    made = set()
    for path in sorted(source.glob("*.yaml")):
        documents = list(yaml.safe_load_all(path.read_text()))
        for doc in documents:
            if not isinstance(doc, dict):
                continue
            if doc.get("scopes"):
                doc["scopes"] = [new for old in doc["scopes"] for new in scoped(old)]
            # A resiliency policy names its app targets by app id too: renamed the same way, or
            # a renamed stack would run on Dapr's defaults instead of the policy.
            targets = (doc.get("spec") or {}).get("targets") or {}
            if doc.get("kind") == "Resiliency" and targets.get("apps"):
                targets["apps"] = {new: policy for old, policy in targets["apps"].items() for new in scoped(old)}
        write_if_changed(target / path.name, yaml.safe_dump_all(documents, sort_keys=False))
        made.add(target / path.name)
    return made


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


def load_samples(stack: Stack) -> list[str]:
    from scripts import samples  # pandas and scikit-learn: imported only when used

    print("samples: loading scikit-learn's datasets through the gateway")
    results = samples.load(stack.gateway_url, list(samples.SAMPLES), stack.admin_key)
    for result in results:
        print(f"  {samples.describe(result)}")
    flowers = next(r for r in results if r["dataset"] == "flowers")
    print(f"  flowers: the first rejected rows: {flowers.get('upload', {}).get('rejected_rows', [])[:3]}")
    with stack.gateway() as gateway:
        profile = gateway.get("/api/datasets/flowers/versions/latest").json()["profile"]
    width = profile["columns"]["sepal_width"]
    print(
        f"  flowers profile: sepal_width missing {width['missing']}, mean {width['mean']:.2f}, "
        f"class balance {profile['class_balance']}"
    )
    return [r["dataset"] for r in results]


def show_models(stack: Stack, datasets: list[str], timeout_s: float = 180) -> bool:
    """Asks for a model of each dataset's latest version and waits for it. Committing a version
    starts that same job already (the job id is derived from what it trains), so this only
    finds it; for a dataset loaded before, it trains one. Returns whether every one made it."""
    print("models: a model of each dataset's latest version, trained and registered by a workflow")
    ok = True
    with stack.gateway() as gateway:
        for name in datasets:
            submitted = gateway.post("/api/training/jobs", json={"dataset": name})
            submitted.raise_for_status()
            job = _finished(gateway, submitted.json()["id"], timeout_s)
            if job is None or job["status"] != "COMPLETED":
                print(f"  {name:14} job {submitted.json()['id']}: {job['error'] if job else 'not finished in time'}")
                ok = False
                continue
            result = job["result"]
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in result["metrics"].items())
            champion = gateway.get(f"/api/models/{result['model']}").json()["aliases"].get("champion")
            print(
                f"  {name:14} v{result['version']} {result['promotion']['alias']:10} (champion v{champion}; "
                f"{job['estimator']} on dataset v{job['version']}): {metrics}"
            )
    return ok


def show_predictions(stack: Stack, datasets: list[str]) -> bool:
    from scripts import predictions  # pandas and scikit-learn: imported only when used

    return predictions.show(stack.gateway_url, datasets, key=stack.admin_key)


def _finished(gateway: httpx.Client, job_id: str, timeout_s: float) -> dict | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = gateway.get(f"/api/training/jobs/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED", "CANCELED"):
            return job
        time.sleep(0.5)
    return None


def run(stack: Stack) -> int:
    was_running = stack.running()
    print(f"stack: component profile {stack.profile} (components/{stack.profile}; {profiles.ENV} chooses)")
    started = infra.up(stack.profile)
    try:
        stack.start()
        print_status(stack.status())
        report = stack.roundtrip()
        print_roundtrip(report)
        names = load_samples(stack)
        models_ok = show_models(stack, names)
        predictions_ok = show_predictions(stack, names)
    finally:
        if not was_running:
            stack.stop()
            infra.down(started)
    if not was_running:
        print("Run `make up` to keep the stack running, then open http://127.0.0.1:8000/docs.")
    return 0 if report["ok"] and models_ok and predictions_ok else 1


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The run file a stack is started from (scripts/launch.py reads it as the dapr CLI would), made
from the project's dapr.yaml: app ids renamed, ports chosen, the profile's components copied
with their scopes renamed, and a Configuration per app with its access control."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from scripts import profiles
from scripts.infra import observability
from scripts.proc import ROOT, free_port, write_if_changed

RUN_FILE = ROOT / "dapr.yaml"
# The ports of one app in the run file (dapr.yaml fixes each, all below 32768).
PORT_FIELDS = ("appPort", "daprHTTPPort", "daprGRPCPort", "daprInternalGRPCPort", "metricsPort")
# The app's own metrics port, in the env of the apps that serve /metrics (the Python services).
METRICS_ENV = "DAPRML_METRICS_PORT"
ACCESS_FILE = ROOT / "dapr" / "access.yaml"
TRUST_DOMAIN = "public"  # what daprd asks sentry for when its Configuration names none


def generate(
    workdir: Path,
    target: Path,
    rename: Callable[[str], str],
    fixed_ports: bool = False,
    topic_prefix: str = "",
    profile: str | None = None,
    observe: observability.Wiring | None = None,
) -> Path:
    """The run file the launcher gets, made from dapr.yaml into `target`: app ids renamed,
    paths absolute, apps run in `workdir`, the profile's components (components/<profile>
    in place of dapr.yaml's components/local) copied with their scopes renamed, and a
    Configuration per app whose access control admits only the callers dapr/access.yaml
    names for it (the callee's sidecar enforces it, so each app needs its own). The profile
    is written next to it (`profile`).

    With observability (`observe`, by default what DAPRML_OBSERVABILITY and this machine
    allow: scripts/infra/observability.py): every Configuration exports spans to the local
    Jaeger, the apps get the OpenTelemetry SDK's variables for it, and the gateway the URLs of
    Prometheus and of the trace backend. Without: none of it."""
    # Ports chosen for a run file made before in this folder are kept: made again for a
    # running stack (make up twice), it must name the ports that stack listens on.
    chosen = chosen_ports(target / "dapr.yaml")
    spec = yaml.safe_load(RUN_FILE.read_text())
    common = spec["common"]
    env = common.setdefault("env", {})
    if topic_prefix:
        env["DAPRML_TOPIC_PREFIX"] = topic_prefix
    observe = observability.wiring() if observe is None else observe
    if observe.traces:
        # The OpenTelemetry SDK's own variables: a backend named in the environment wins.
        env.update({name: os.environ.get(name, value) for name, value in observability.APP_ENV.items()})
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
        write_config(base, [rename(c) for c in callers.get(service, [])], config, traces=observe.traces)
        if service == "gateway":
            app["env"] = {**(app.get("env") or {}), **gateway_env(observe)}
        app.update(
            appID=rename(service),
            appDirPath=str(workdir),
            configFilePath=str(config),
            # The apps run in the working folder: a script named by its path in the project
            # (node services/notifier/server.js) is named by its full path instead.
            command=[str(ROOT / arg) if (ROOT / arg).is_file() else arg for arg in app["command"]],
        )
        if not fixed_ports:
            with_ports(app, chosen.pop(0) if chosen else free_app_ports())
        env[f"DAPRML_{service.upper()}_APP_ID"] = app["appID"]
    run_file = target / "dapr.yaml"
    write_if_changed(run_file, yaml.safe_dump(spec, sort_keys=False))
    write_if_changed(target / "profile", profile + "\n")
    return run_file


def add_replicas(run_file: Path, replicas: dict[str, int], previous: list[dict[str, int]]) -> None:
    """Runs `count` copies of each app id named, each with ports of its own: those in `previous`
    (as a run file made before chose them) first, then free ones."""
    spec = yaml.safe_load(run_file.read_text())
    for app_id, count in replicas.items():
        first = next(a for a in spec["apps"] if a["appID"] == app_id)
        for _ in range(count - 1):
            spec["apps"].append(with_ports(dict(first), previous.pop(0) if previous else free_app_ports()))
    write_if_changed(run_file, yaml.safe_dump(spec, sort_keys=False))


def chosen_ports(run_file: Path) -> list[dict[str, int]]:
    """The ports of each app of a run file made before, in order (none when there is none)."""
    try:
        spec = yaml.safe_load(run_file.read_text())
    except OSError:
        return []
    return [
        {name: app[name] for name in PORT_FIELDS} | {METRICS_ENV: int(app.get("env", {}).get(METRICS_ENV, 0))}
        for app in spec["apps"]
    ]


def free_app_ports() -> dict[str, int]:
    """Every port one app and its daprd listen on, free and below the ephemeral range. Left to
    the dapr CLI, a daprd's internal gRPC and metrics ports come from that range, where a
    sidecar's own outgoing connection can take one before daprd binds it (one did: that daprd
    exited and its stack never became ready)."""
    return {name: free_port() for name in (*PORT_FIELDS, METRICS_ENV)}


def with_ports(app: dict[str, Any], ports: dict[str, int]) -> dict[str, Any]:
    """The app given these ports: its own and its daprd's, and its metrics port when it serves
    /metrics (its env names one); the env is the app's own copy, not a replica's."""
    app.update({name: ports[name] for name in PORT_FIELDS})
    if METRICS_ENV in (app.get("env") or {}):
        app["env"] = {**app["env"], METRICS_ENV: str(ports.get(METRICS_ENV) or free_port())}
    return app


def gateway_env(observe: observability.Wiring) -> dict[str, str]:
    """Where the gateway's operations page reads metrics and links traces (its settings
    prometheus_url and traces_url); nothing when they are not there."""
    env = {"DAPRML_PROMETHEUS_URL": observability.PROMETHEUS_URL} if observe.metrics else {}
    return env | ({"DAPRML_TRACES_URL": observability.TRACES_URL} if observe.traces else {})


def write_config(base: dict[str, Any], callers: list[str], target: Path, traces: bool = False) -> None:
    """The Configuration `base` with access control: service invocation denied by default,
    allowed from each of `callers` (identified by the SPIFFE id in its mTLS certificate); with
    `traces`, spans exported to the local Jaeger over OTLP unless `base` names an exporter of
    its own (sampling stays as `base` says)."""
    config = dict(base, spec=dict(base["spec"]))
    tracing = config["spec"].get("tracing") or {}
    if traces and not tracing.get("otel"):  # an exporter of the base's own (a hosted backend) wins
        config["spec"]["tracing"] = {**tracing, "otel": dict(observability.DAPRD_OTEL)}
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

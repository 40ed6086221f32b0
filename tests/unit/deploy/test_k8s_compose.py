"""deploy/k8s against docker-compose.yml and dapr.yaml, so that the three cannot drift: for every
app, the images (name and tag) and what they run, the container ports, the environment (the
DAPRML_* settings, app id, app port, tokens), the health checks and the restart policy.

What legitimately differs is in DIFFERENCES, each with its reason. An environment variable that
differs without being listed fails, and so does a listed one that no longer differs anywhere."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.containers import images
from tests.unit.deploy.test_k8s import DEPLOYMENTS, K8S, OVERLAY, of_kind

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
APPS = {app["appID"]: app for app in yaml.safe_load((ROOT / "dapr.yaml").read_text())["apps"]}
SECRET = "<from a secret>"

DIFFERENCES = {
    # Service discovery: where an app finds its own sidecar.
    "DAPRML_DAPR_HOST": "compose runs each sidecar in a container of its own, found by name (<service>-daprd); "
    "on Kubernetes it is in the app's pod, at the default 127.0.0.1",
    "DAPR_HTTP_PORT": "the Dapr injector sets it in the app's container (its pod's sidecar, 3500); compose gives "
    "dapr.yaml's per-app ports, which share one host locally",
    "DAPR_GRPC_PORT": "the Dapr injector sets it in the app's container (50001), as DAPR_HTTP_PORT",
    # Tracing: who exports the apps' spans.
    "OTEL_EXPORTER_OTLP_PROTOCOL": "compose exports the apps' own spans when its env file names a collector; on "
    "Kubernetes the sidecars export (each Configuration's otel), set OTEL_EXPORTER_OTLP_ENDPOINT to add the apps'",
    # Not environment variables, said here so that the list is the one place.
    "tokens": "compose takes them from its env file, Kubernetes from each app's own Secrets (secretKeyRef): both "
    "come to the same variables, compared here as from a secret",
    "control plane": "compose runs sentry, placement and scheduler from daprml/<program> images; on Kubernetes "
    "they are the Dapr Helm chart's",
    "init": "compose puts an init in front of every process (init: true); on Kubernetes the apps are PID 1 and "
    "stop on SIGTERM themselves (uvicorn's and the notifier's handlers)",
}
ENV_DIFFERENCES = {name for name in DIFFERENCES if name.isupper()}
RESTART = {"unless-stopped": "Always", "always": "Always"}  # compose's policy -> a pod's


def resolved(value: object) -> str | None:
    """A compose value as the container gets it from the committed files: `${X:?...}` comes from
    the env file (a secret), `${X:-default}` is its default, where an empty one means not
    configured (as the settings read an empty value)."""
    text = str(value)
    if text.startswith("${") and ":?" in text:
        return SECRET
    text = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)
    return text or None


def compose_env(service: str) -> dict[str, str]:
    env = {name: resolved(value) for name, value in COMPOSE[service].get("environment", {}).items()}
    return {name: value for name, value in env.items() if value is not None}


def container(app_id: str) -> dict:
    (only,) = DEPLOYMENTS[app_id]["spec"]["template"]["spec"]["containers"]
    return only


def k8s_env(app_id: str) -> dict[str, str]:
    return {e["name"]: e["value"] if "value" in e else SECRET for e in container(app_id).get("env", [])}


def annotations(app_id: str) -> dict[str, str]:
    return DEPLOYMENTS[app_id]["spec"]["template"]["metadata"]["annotations"]


def seconds(duration: str) -> int:
    assert re.fullmatch(r"\d+s", duration), duration
    return int(duration[:-1])


def healthcheck(dockerfile: str) -> dict[str, object]:
    """An image's HEALTHCHECK: its options in seconds (retries as a count) and the path it asks."""
    text = (ROOT / dockerfile).read_text().replace("\\\n", " ")
    line = next(li for li in text.splitlines() if li.startswith("HEALTHCHECK "))
    options = {name: value for name, value in re.findall(r"--([a-z-]+)=(\S+)", line)}
    found = {name: seconds(value) for name, value in options.items() if name != "retries"}
    return {**found, "retries": int(options["retries"]), "path": re.search(r"/(healthz|readyz)", line)[0]}


def uid(dockerfile: str) -> int:
    return int(re.search(r"useradd --uid (\d+)", (ROOT / dockerfile).read_text())[1])


def test_the_apps_are_the_same_three_times():
    assert set(DEPLOYMENTS) == set(APPS) and set(APPS) <= set(COMPOSE)


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_the_app_runs_compose_images_with_the_same_tag_command_and_user(app_id):
    service = COMPOSE[app_id]
    image = resolved(service["image"])
    assert image == images.tag(image.split("/")[1].split(":")[0])  # the project's version
    assert container(app_id)["image"] == image
    # The Python image's command names the service (python -m <it>); the notifier's image runs it alone.
    assert container(app_id).get("args") == service.get("command")
    assert annotations(app_id)["dapr.io/sidecar-image"] == resolved(COMPOSE[f"{app_id}-daprd"]["image"])
    pod = DEPLOYMENTS[app_id]["spec"]["template"]["spec"]
    for dockerfile in (service["build"]["dockerfile"], COMPOSE[f"{app_id}-daprd"]["build"]["dockerfile"]):
        assert pod["securityContext"]["runAsUser"] == uid(dockerfile), dockerfile
    assert pod["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_the_app_id_ports_and_settings_are_the_run_files_and_composes(app_id):
    run, env, compose = APPS[app_id], k8s_env(app_id), compose_env(app_id)
    sidecar = dict(a.removeprefix("--").split("=", 1) for a in COMPOSE[f"{app_id}-daprd"]["command"])
    assert annotations(app_id)["dapr.io/app-id"] == sidecar["app-id"] == app_id
    assert int(annotations(app_id)["dapr.io/app-port"]) == int(env["APP_PORT"]) == int(compose["APP_PORT"])
    assert int(env["APP_PORT"]) == run["appPort"]
    ports = {p["name"]: p["containerPort"] for p in container(app_id)["ports"]}
    assert ports == {"http": run["appPort"], "metrics": int(compose["DAPRML_METRICS_PORT"])}
    # What dapr.yaml gives the app, both give it (the values compared as text, as an env holds them).
    for name, value in (run.get("env") or {}).items():
        assert env[name] == compose[name] == str(value), name
    # Neither sets APP_ID (the dapr CLI does, locally): the app's own default must be its app id.
    assert "APP_ID" not in env and "APP_ID" not in compose
    if app_id == "notifier":
        assert re.search(r"appId: env\.APP_ID \|\| 'notifier'", (ROOT / "services/notifier/notifier.js").read_text())
    else:
        settings = __import__(f"services.{app_id}.settings", fromlist=["Settings"]).Settings
        assert settings.model_fields["app_id"].default == app_id


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_the_environment_differs_only_where_the_exceptions_say(app_id):
    env, compose = k8s_env(app_id), compose_env(app_id)
    differing = {name for name in env.keys() | compose.keys() if env.get(name) != compose.get(name)}
    assert differing <= ENV_DIFFERENCES, {n: (compose.get(n), env.get(n)) for n in differing - ENV_DIFFERENCES}
    assert env["APP_API_TOKEN"] == env["DAPR_API_TOKEN"] == SECRET  # DIFFERENCES["tokens"]


def test_every_listed_difference_still_differs_somewhere():
    differing = {
        name
        for app_id in APPS
        for name in k8s_env(app_id).keys() | compose_env(app_id).keys()
        if k8s_env(app_id).get(name) != compose_env(app_id).get(name)
    }
    assert ENV_DIFFERENCES <= differing, f"no longer different, drop from DIFFERENCES: {ENV_DIFFERENCES - differing}"


@pytest.mark.parametrize("app_id", sorted(APPS))
def test_the_probes_are_composes_health_checks_and_the_restart_policy_its(app_id):
    service, c = COMPOSE[app_id], container(app_id)
    check = service["healthcheck"]
    ready = c["readinessProbe"]
    assert ready["httpGet"]["path"] == re.search(r"/(healthz|readyz)", " ".join(check["test"]))[0] == "/readyz"
    assert ready["periodSeconds"] == seconds(check["interval"])
    assert ready["timeoutSeconds"] == seconds(check["timeout"])
    assert ready["failureThreshold"] == check["retries"]
    # The start period: the startup probe's window, before which neither of the others counts.
    start = c["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] == seconds(check["start_period"])
    # Alive as the image's own HEALTHCHECK says (what `docker run` of the image checks).
    image, alive = healthcheck(service["build"]["dockerfile"]), c["livenessProbe"]
    assert alive["httpGet"]["path"] == start["httpGet"]["path"] == image["path"] == "/healthz"
    assert (alive["periodSeconds"], alive["timeoutSeconds"], alive["failureThreshold"]) == (
        image["interval"],
        image["timeout"],
        image["retries"],
    )
    # The sidecar: ready as compose's <app>-daprd health check says.
    sidecar_check, notes = COMPOSE[f"{app_id}-daprd"]["healthcheck"], annotations(app_id)
    assert int(notes["dapr.io/sidecar-readiness-probe-period-seconds"]) == seconds(sidecar_check["interval"])
    assert int(notes["dapr.io/sidecar-readiness-probe-timeout-seconds"]) == seconds(sidecar_check["timeout"])
    assert int(notes["dapr.io/sidecar-readiness-probe-threshold"]) == sidecar_check["retries"]
    pod = DEPLOYMENTS[app_id]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == RESTART[service["restart"]] == RESTART[COMPOSE[f"{app_id}-daprd"]["restart"]]


def test_the_overlay_renames_exactly_the_images_base_runs_and_keeps_their_tag():
    used = {container(a)["image"] for a in APPS} | {annotations(a)["dapr.io/sidecar-image"] for a in APPS}
    kustomization = yaml.safe_load((K8S / "overlays/aws/kustomization.yaml").read_text())
    renamed = {f"{i['name']}:{i['newTag']}" for i in kustomization["images"]}
    assert renamed == used
    assert all(i["newName"].endswith(f"/{i['name']}") for i in kustomization["images"])  # a registry's copy
    assert of_kind(OVERLAY, "Deployment")  # the overlay includes base


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_rendered_overlay_points_every_container_and_sidecar_at_its_registry():
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays/aws")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    kustomization = yaml.safe_load((K8S / "overlays/aws/kustomization.yaml").read_text())
    wanted = {f"{i['newName']}:{i['newTag']}" for i in kustomization["images"]}
    rendered = of_kind([d for d in yaml.safe_load_all(out.stdout) if d], "Deployment").values()
    pods = [d["spec"]["template"] for d in rendered]
    found = {c["image"] for pod in pods for c in pod["spec"]["containers"]}
    found |= {pod["metadata"]["annotations"]["dapr.io/sidecar-image"] for pod in pods}
    assert found == wanted

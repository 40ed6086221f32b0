"""docker-compose.yml against what the local profile runs, read at test time (a new app or
component there is asked for here): the same apps, ports, sidecar settings, access control,
components and tokens as dapr.yaml, dapr/access.yaml and components/local, with the
protections of the local stack (mTLS, Redis's password, loopback only); and `docker compose
config` when a compose v2 client is installed. The end-to-end suite runs it (its compose target)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.containers import configs, context, engine, images

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
RUN_FILE = yaml.safe_load((ROOT / "dapr.yaml").read_text())
COMMON = RUN_FILE["common"]
APPS = {app["appID"]: app for app in RUN_FILE["apps"]}
SERVICES = COMPOSE["services"]
OBSERVABILITY = {name for name, s in SERVICES.items() if "observability" in s.get("profiles", [])}
SIDECARS = {name.removesuffix("-daprd"): s for name, s in SERVICES.items() if name.endswith("-daprd")}
CONTROL_PLANE = ("sentry", "placement", "scheduler")
TRUST_ANCHORS = "/var/lib/dapr/trust/ca.crt"


def flags(service: dict) -> dict[str, str]:
    """A Dapr program's flags (--name=value or a bare --name): its entrypoint's, then its command's."""
    args = [a for a in [*service.get("entrypoint", []), *service["command"]] if a.startswith("--")]
    return dict(a.removeprefix("--").split("=", 1) if "=" in a else (a.removeprefix("--"), "") for a in args)


def app_id_of(sidecar: dict) -> str:
    return flags(sidecar)["app-id"]


def replicas(app_id: str) -> list[str]:
    """The compose services running an app (its sidecars' --app-channel-address)."""
    return sorted(flags(s)["app-channel-address"] for s in SIDECARS.values() if app_id_of(s) == app_id)


def mounts(service: dict) -> dict[str, str]:
    """Container path -> source of a service's mounts (a repository path or a volume name)."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def documents(folder: Path) -> dict[str, dict]:
    """Component name (or kind, for the resiliency policy) -> document, for a components folder."""
    docs = {}
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        docs[doc["metadata"]["name"] if doc["kind"] == "Component" else doc["kind"]] = doc
    return docs


def dockerfile_line(dockerfile: str, instruction: str) -> list[str]:
    line = next(li for li in (ROOT / dockerfile).read_text().splitlines() if li.startswith(f"{instruction} "))
    return json.loads(line.removeprefix(f"{instruction} "))


def test_every_app_of_the_run_file_runs_beside_its_own_sidecar_which_reaches_it_by_name():
    for name, app in APPS.items():
        assert name in SERVICES and name in SIDECARS, f"dapr.yaml's {name} has no {name} and {name}-daprd in compose"
        for service_name in replicas(name):
            service, sidecar = SERVICES[service_name], SERVICES[f"{service_name}-daprd"]
            args = flags(sidecar)
            assert args["app-id"] == name and args["app-channel-address"] == service_name
            assert "network_mode" not in sidecar and "network_mode" not in service  # docker/compose#6626
            for flag, key in (
                ("app-port", "appPort"),
                ("dapr-http-port", "daprHTTPPort"),
                ("dapr-grpc-port", "daprGRPCPort"),
                ("dapr-internal-grpc-port", "daprInternalGRPCPort"),
            ):
                assert int(args[flag]) == app[key], (service_name, flag)
            # The app listens where its sidecar calls it and finds its own sidecar by name.
            env = service["environment"]
            assert env["DAPRML_HOST"] == "0.0.0.0" and env["DAPRML_DAPR_HOST"] == f"{service_name}-daprd"
            assert int(env["APP_PORT"]) == app["appPort"]
            assert int(env["DAPR_HTTP_PORT"]) == app["daprHTTPPort"]
            assert int(env["DAPR_GRPC_PORT"]) == app["daprGRPCPort"]
            assert env.get("DAPRML_METRICS_PORT") == (app.get("env") or {}).get("DAPRML_METRICS_PORT")
            assert int(sidecar["healthcheck"]["test"][-1]) == app["daprHTTPPort"]


def test_each_app_runs_the_command_of_the_run_file_from_its_image():
    for name, app in APPS.items():
        for service_name in replicas(name):
            service = SERVICES[service_name]
            if app["command"][0] == "python":  # the Python services share one image
                assert service["image"].startswith("daprml/python:")
                assert service["build"]["dockerfile"] == "deploy/Dockerfile"
                assert [*dockerfile_line("deploy/Dockerfile", "ENTRYPOINT"), *service["command"]] == app["command"]
            else:  # its own image, which runs what dapr.yaml runs
                assert dockerfile_line(service["build"]["dockerfile"], "CMD") == app["command"], name


def test_inference_runs_as_two_replicas_under_one_app_id():
    assert replicas("inference") == ["inference", "inference-2"]


def test_no_sidecar_serves_an_app_the_run_file_does_not_have():
    assert {app_id_of(s) for s in SIDECARS.values()} == set(APPS)


@pytest.mark.parametrize("name", sorted(SIDECARS))
def test_every_sidecar_has_the_run_files_common_settings_mtls_and_its_apps_configuration(name):
    sidecar, args = SIDECARS[name], flags(SIDECARS[name])
    assert sidecar["image"].startswith("daprml/daprd:")
    assert args["app-protocol"] == COMMON["appProtocol"]
    assert args["max-body-size"] == COMMON["maxBodySize"]
    assert ("enable-app-health-check" in args) == COMMON["enableAppHealthCheck"]
    assert args["app-health-check-path"] == COMMON["appHealthCheckPath"]
    volumes = mounts(sidecar)
    assert volumes[args["resources-path"]] == "./components/compose"
    config = Path(args["config"])
    assert volumes[str(config.parent)] == "./deploy/compose/config" and config.stem == app_id_of(sidecar)
    assert all(v.endswith(":ro") for v in sidecar["volumes"] if v.startswith("."))
    # Placement and scheduler: dapr.yaml's ports, on the compose services that listen there.
    for flag, key in (
        ("placement-host-address", "placementHostAddress"),
        ("scheduler-host-address", "schedulerHostAddress"),
    ):
        host, port = args[flag].rsplit(":", 1)
        assert port == COMMON[key].rsplit(":", 1)[1]
        assert f"--port={port}" in SERVICES[host]["command"]
        assert sidecar["depends_on"][host]["condition"] == "service_healthy"
    # mTLS: a certificate from sentry, checked against sentry's root.
    assert "enable-mtls" in args and args["sentry-address"] == "sentry:50001"
    assert sidecar["environment"]["DAPR_TRUST_ANCHORS_FILE"] == TRUST_ANCHORS
    assert mounts(sidecar)[str(Path(TRUST_ANCHORS).parent)] == "trust"


def test_the_control_plane_speaks_mtls_with_sentrys_root_which_only_sentry_writes():
    sentry = flags(SERVICES["sentry"])
    issuer = Path(sentry["issuer-credentials"])
    # ca.crt lands in the trust volume (relative to the issuer folder), the issuer key does not.
    assert (issuer / sentry["issuer-ca-filename"]).resolve() == Path(TRUST_ANCHORS)
    assert mounts(SERVICES["sentry"])[str(issuer)] == "sentry" and "trust" in mounts(SERVICES["sentry"]).values()
    for name in ("placement", "scheduler"):
        args = flags(SERVICES[name])
        assert "tls-enabled" in args and args["trust-anchors-file"] == TRUST_ANCHORS
        assert args["sentry-address"] == "sentry:50001" and args["trust-domain"] == sentry["trust-domain"]
        assert f"trust:{Path(TRUST_ANCHORS).parent}:ro" in SERVICES[name]["volumes"]
    readers = [s for n, s in SERVICES.items() if n != "sentry" and "trust" in mounts(s).values()]
    assert all(v.endswith(":ro") for s in readers for v in s["volumes"] if v.startswith("trust:"))


def test_each_sidecars_configuration_is_the_local_ones_with_its_own_access_control(tmp_path):
    made = {path.name: path.read_text() for path in configs.write(tmp_path)}
    committed = {path.name: path.read_text() for path in configs.FOLDER.glob("*.yaml")}
    assert made == committed, "deploy/compose/config/ is stale: python -m scripts.containers configs"
    jaeger = configs.write_jaeger(tmp_path / "jaeger.yaml").read_text()
    assert jaeger == configs.JAEGER.read_text(), (
        "deploy/compose/jaeger.yaml is stale: python -m scripts.containers configs"
    )
    access = yaml.safe_load((ROOT / "dapr/access.yaml").read_text())
    for app in APPS:
        spec = yaml.safe_load(committed[f"{app}.yaml"])["spec"]
        assert spec["mtls"]["enabled"] and spec["accessControl"]["defaultAction"] == "deny"
        assert sorted(p["appId"] for p in spec["accessControl"]["policies"]) == sorted(access.get(app) or [])


def test_the_sidecars_get_the_local_profiles_components_under_the_same_names_and_scopes():
    local, compose = documents(ROOT / "components/local"), documents(ROOT / "components/compose")
    assert compose.keys() == local.keys()
    for name, doc in compose.items():
        if doc["kind"] == "Component":
            assert doc["spec"]["type"] == local[name]["spec"]["type"], name
            assert sorted(doc.get("scopes", [])) == sorted(local[name].get("scopes", [])), name
            assert doc.get("auth") == local[name].get("auth"), name
    assert compose["Resiliency"]["spec"] == local["Resiliency"]["spec"]


def test_redis_has_a_password_from_a_secret_file_that_the_components_reference():
    components = documents(ROOT / "components/compose")
    store = {m["name"]: m["value"] for m in components["componentsecrets"]["spec"]["metadata"]}
    assert store["secretsFile"] == "/run/secrets/component-secrets"
    for name in ("statestore", "pubsub", "pubsub-replicas"):
        password = next(m for m in components[name]["spec"]["metadata"] if m["name"] == "redisPassword")
        assert password == {
            "name": "redisPassword",
            "secretKeyRef": {"name": "redis-password", "key": "redis-password"},
        }
        assert components[name]["auth"] == {"secretStore": "componentsecrets"}
    assert SERVICES["redis"]["secrets"] == ["redis-password"]
    assert all("component-secrets" in s["secrets"] for s in SIDECARS.values())
    for name in ("daprml", "component-secrets", "redis-password"):
        assert COMPOSE["secrets"][name]["file"].startswith("${DAPRML_SECRETS_DIR:-./.data/compose}/")
    # Redis's password reaches it only as that file (never on a command line or in its env).
    assert "environment" not in SERVICES["redis"] and "command" not in SERVICES["redis"]


def test_the_secret_store_reads_the_secret_only_the_gateways_sidecar_gets():
    spec = documents(ROOT / "components/compose")["secretstore"]["spec"]
    path = next(m["value"] for m in spec["metadata"] if m["name"] == "secretsFile")
    assert path == "/run/secrets/daprml"
    assert {app_id_of(s) for s in SIDECARS.values() if "daprml" in s.get("secrets", [])} == {"gateway"}


def test_only_the_gateway_is_published_and_only_on_loopback():
    published = {name: s["ports"] for name, s in SERVICES.items() if s.get("ports") and name not in OBSERVABILITY}
    port = APPS["gateway"]["appPort"]
    assert published == {"gateway": [f"127.0.0.1:${{DAPRML_GATEWAY_PORT:-{port}}}:{port}"]}
    assert all(p.startswith("127.0.0.1:") for name in OBSERVABILITY for p in SERVICES[name].get("ports", []))


def test_every_app_and_sidecar_takes_both_tokens_from_the_env_file_and_refuses_to_start_without():
    for name in APPS:
        for service_name in replicas(name):
            for service in (SERVICES[service_name], SERVICES[f"{service_name}-daprd"]):
                env = service["environment"]
                assert env["APP_API_TOKEN"].startswith("${APP_API_TOKEN:?"), service_name
                assert env["DAPR_API_TOKEN"].startswith("${DAPR_API_TOKEN:?"), service_name
    example = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/compose.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert example == {"APP_API_TOKEN": "", "DAPR_API_TOKEN": ""}  # never a value in git


def test_every_container_restarts_by_policy_stops_fast_has_a_health_check_and_is_not_root():
    for name, service in SERVICES.items():
        assert service["restart"] == "unless-stopped", name
        assert service["init"] is True, name  # PID 1 forwards SIGTERM: a stop takes a second, not 10
        assert service.get("read_only") is True, name
        assert "user" not in service, name  # the images' own non-root users
        dockerfile = (ROOT / service["build"]["dockerfile"]).read_text()
        assert "\nUSER " in dockerfile and "HEALTHCHECK" in dockerfile, name
    for name in APPS:
        assert "/readyz" in " ".join(SERVICES[name]["healthcheck"]["test"]), name  # needs the sidecar too


def test_every_image_is_one_the_project_builds_tagged_with_its_version():
    version = images.version()
    built = {image.name: image for image in images.IMAGES}
    for name, service in SERVICES.items():
        repository, tag = service["image"].split(":", 1)
        assert tag == f"${{DAPRML_VERSION:-{version}}}", name
        image = built[repository.removeprefix("daprml/")]
        assert service["build"]["dockerfile"] == image.dockerfile, name
        assert service["build"].get("args", {}) == image.args, name


@pytest.mark.parametrize("dockerfile", sorted({image.dockerfile for image in images.IMAGES}))
def test_each_dockerfile_takes_its_base_as_an_argument_and_its_context_holds_what_it_copies(dockerfile):
    text = (ROOT / dockerfile).read_text()
    assert "ARG BASE=" in text and "FROM ${BASE}" in text
    kept = context.files(ROOT, ROOT / f"{dockerfile}.dockerignore")
    assert not any(k.startswith((".data", ".venv", ".git", ".env")) for k in kept)
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert any(k == source.rstrip("/") or k.startswith(source) for k in kept), source


def test_prometheus_scrapes_every_sidecar_and_every_apps_metrics():
    prometheus = SERVICES["prometheus"]
    config = yaml.safe_load((ROOT / mounts(prometheus)["/etc/prometheus/prometheus.yml"]).read_text())
    (job,) = config["scrape_configs"]
    targets = {g["targets"][0]: g["labels"] for g in job["static_configs"]}
    for name in APPS:
        for service_name in replicas(name):
            assert targets[f"{service_name}-daprd:9090"] == {"app_id": name, "service": name, "kind": "daprd"}
            metrics = SERVICES[service_name]["environment"]["DAPRML_METRICS_PORT"]
            assert targets[f"{service_name}:{metrics}"] == {"app_id": name, "service": name, "kind": "app"}


def test_the_env_file_writer_takes_the_local_stacks_credentials(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compose_env", ROOT / "deploy/compose_env.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = module.write_env(tmp_path)
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    assert {"APP_API_TOKEN", "DAPR_API_TOKEN", "DAPRML_SECRETS_DIR"} <= set(values)
    assert all(len(values[k]) >= 32 for k in ("APP_API_TOKEN", "DAPR_API_TOKEN"))
    assert env.stat().st_mode & 0o777 == 0o600
    folder = Path(values["DAPRML_SECRETS_DIR"])
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("secrets.json", "component-secrets.json", "redis-password"):
        assert (folder / name).stat().st_size > 0, name


def compose_client() -> list[str] | None:
    """`docker compose` (the v2 plugin: the user's, or the one scripts/containers installs),
    else a v2 `docker-compose` on PATH."""
    candidates = [["docker", "compose"]] if shutil.which("docker") else []
    candidates += [[path] for path in (shutil.which("docker-compose"),) if path]
    for command in candidates:
        try:
            out = subprocess.run(
                [*command, "version", "--short"], capture_output=True, text=True, timeout=30, env=engine.env()
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip().lstrip("v").split(".")[0] not in ("", "1"):
            return command
    return None


def test_docker_compose_config_passes(tmp_path):
    command = compose_client()
    if command is None:
        pytest.skip("no docker compose v2 client installed (neither the docker plugin nor docker-compose)")
    # Only the env files given here count: none of the caller's own variables of these names.
    clean = {k: v for k, v in engine.env().items() if not k.startswith(("APP_API_TOKEN", "DAPR_API_TOKEN", "DAPRML_"))}

    def config(env_file: Path) -> subprocess.CompletedProcess[str]:
        args = ["--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]
        return subprocess.run([*command, *args, "config"], capture_output=True, text=True, timeout=60, env=clean)

    env = tmp_path / "test.env"
    env.write_text(
        "APP_API_TOKEN=app-token-for-the-test\nDAPR_API_TOKEN=dapr-token-for-the-test\nDAPRML_GATEWAY_PORT=18123\n"
    )
    out = config(env)
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert resolved["services"]["ingestion-daprd"]["environment"]["DAPR_API_TOKEN"] == "dapr-token-for-the-test"
    assert resolved["services"]["gateway"]["ports"][0]["published"] == "18123"
    assert resolved["services"]["gateway"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert set(resolved["services"]) == set(SERVICES) - OBSERVABILITY
    # Without the tokens compose refuses, naming what is missing.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = config(empty)
    assert refused.returncode != 0 and "_API_TOKEN is missing a value" in refused.stderr + refused.stdout


def test_the_local_bases_are_the_default_only_where_they_can_be_made(monkeypatch):
    monkeypatch.setenv("DAPRML_IMAGE_BASES", "official")
    assert images.bases() == "official"
    monkeypatch.setenv("DAPRML_IMAGE_BASES", "local")
    assert images.bases() == "local"
    monkeypatch.setenv("DAPRML_IMAGE_BASES", "")
    expected = "local" if os.geteuid() == 0 and shutil.which("apt-get") else "official"
    assert images.bases() == expected

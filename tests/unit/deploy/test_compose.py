"""docker-compose.yml cannot be run here (no container engine), so it is checked against what
the local profile runs: the same apps, ports, components and sidecar settings as dapr.yaml and
components/local (read at test time, so a new app or component there is asked for here), and
`docker compose config` when a compose v2 client is installed."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
RUN_FILE = yaml.safe_load((ROOT / "dapr.yaml").read_text())
COMMON = RUN_FILE["common"]
APPS = {app["appID"]: app for app in RUN_FILE["apps"]}
SERVICES = COMPOSE["services"]
SIDECARS = {name.removesuffix("-daprd"): s for name, s in SERVICES.items() if name.endswith("-daprd")}


def flags(sidecar: dict) -> dict[str, str]:
    """daprd's flags: the shared entrypoint's, then the sidecar's own command."""
    args = [*sidecar["entrypoint"][1:], *sidecar["command"]]
    return dict(arg.removeprefix("--").split("=", 1) if "=" in arg else (arg.removeprefix("--"), "") for arg in args)


def mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (relative to the repo) of a service's bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = source
    return found


def documents(folder: Path) -> dict[str, dict]:
    """Component name (or kind, for the resiliency policy) -> document, for a components folder."""
    docs = {}
    for path in sorted(folder.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        docs[doc["metadata"]["name"] if doc["kind"] == "Component" else doc["kind"]] = doc
    return docs


def image_command(dockerfile: str) -> list[str]:
    cmd = next(line for line in (ROOT / dockerfile).read_text().splitlines() if line.startswith("CMD "))
    return json.loads(cmd.removeprefix("CMD "))


def test_every_app_of_the_run_file_has_a_container_and_a_sidecar_in_its_network():
    for name, app in APPS.items():
        assert name in SERVICES, f"dapr.yaml's {name} has no service in docker-compose.yml"
        assert name in SIDECARS, f"dapr.yaml's {name} has no {name}-daprd sidecar"
        service, sidecar = SERVICES[name], SIDECARS[name]
        if app["command"][0] == "python":  # the Python services share one image
            assert service["build"]["dockerfile"] == "deploy/Dockerfile"
            assert service["build"]["args"]["SERVICE"] == name
        else:  # another language: an image of its own that runs what dapr.yaml runs
            assert image_command(service["build"]["dockerfile"]) == app["command"], name
        assert sidecar["network_mode"] == f"service:{name}"
        args = flags(sidecar)
        assert args["app-id"] == name
        assert int(args["app-port"]) == app["appPort"]
        assert int(args["dapr-http-port"]) == app["daprHTTPPort"]
        assert int(args["dapr-grpc-port"]) == app["daprGRPCPort"]
        # The app finds its sidecar (and listens) where daprd expects, as under the dapr CLI.
        env = service["environment"]
        assert int(env["APP_PORT"]) == app["appPort"]
        assert int(env["DAPR_HTTP_PORT"]) == app["daprHTTPPort"]
        assert int(env["DAPR_GRPC_PORT"]) == app["daprGRPCPort"]


def test_no_sidecar_serves_an_app_the_run_file_does_not_have():
    assert set(SIDECARS) <= set(APPS)


@pytest.mark.parametrize("name", sorted(SIDECARS))
def test_every_sidecar_has_the_run_files_common_settings(name):
    sidecar, args = SIDECARS[name], flags(SIDECARS[name])
    assert sidecar["image"].startswith("daprio/daprd:")
    assert args["app-protocol"] == COMMON["appProtocol"]
    assert args["max-body-size"] == COMMON["maxBodySize"]
    assert ("enable-app-health-check" in args) == COMMON["enableAppHealthCheck"]
    assert args["app-health-check-path"] == COMMON["appHealthCheckPath"]
    # The Configuration is dapr.yaml's own file; the components are the compose profile's folder.
    volumes = mounts(sidecar)
    assert Path(volumes[args["config"]]) == Path(COMMON["configFilePath"])
    assert Path(volumes[args["resources-path"]]) == Path("components/compose")
    assert all(v.endswith(":ro") for v in sidecar["volumes"] if v.startswith("."))
    # Placement and scheduler: dapr.yaml's ports, on the compose services that listen there.
    for flag, key in (
        ("placement-host-address", "placementHostAddress"),
        ("scheduler-host-address", "schedulerHostAddress"),
    ):
        host, port = args[flag].rsplit(":", 1)
        assert port == COMMON[key].rsplit(":", 1)[1]
        command = SERVICES[host]["command"]
        assert command[command.index("--port") + 1] == port
        assert host in sidecar["depends_on"]


def test_the_sidecars_get_the_local_profiles_components_under_the_same_names_and_scopes():
    local, compose = documents(ROOT / "components/local"), documents(ROOT / "components/compose")
    # The compose profile's Redis is reachable only on compose's own network and has no
    # password (yet): no componentsecrets store there.
    local.pop("componentsecrets")
    assert compose.keys() == local.keys()
    for name, doc in compose.items():
        if doc["kind"] == "Component":
            assert doc["spec"]["type"] == local[name]["spec"]["type"], name
            assert sorted(doc.get("scopes", [])) == sorted(local[name].get("scopes", [])), name
    assert compose["Resiliency"]["spec"] == local["Resiliency"]["spec"]


def test_the_secret_store_reads_the_secret_only_the_gateways_sidecar_gets():
    spec = documents(ROOT / "components/compose")["secretstore"]["spec"]
    path = next(m["value"] for m in spec["metadata"] if m["name"] == "secretsFile")
    assert path == "/run/secrets/daprml" and "daprml" in COMPOSE["secrets"]
    assert {name for name, s in SIDECARS.items() if s.get("secrets")} == {"gateway"}
    # Made with the admin key's hash by deploy/compose_env.py (as by the local stack's setup).
    assert COMPOSE["secrets"]["daprml"]["file"] == "${DAPRML_SECRETS_FILE:-./.data/secrets.json}"


def test_only_the_gateway_is_published_and_only_on_loopback():
    published = {name: service["ports"] for name, service in SERVICES.items() if service.get("ports")}
    # Besides the gateway, Prometheus's and the trace UI's own ports, on loopback too.
    assert set(published) == {"gateway", "prometheus", "jaeger"}
    assert published["gateway"] == [f"127.0.0.1:{APPS['gateway']['appPort']}:{APPS['gateway']['appPort']}"]
    assert published["prometheus"] == ["127.0.0.1:9090:9090"] and published["jaeger"] == ["127.0.0.1:16686:16686"]
    assert SERVICES["gateway"]["environment"]["DAPRML_HOST"] == "0.0.0.0"
    assert all("DAPRML_HOST" not in SERVICES[name]["environment"] for name in APPS if name != "gateway")


def test_every_app_and_sidecar_takes_both_tokens_from_the_env_file_and_refuses_to_start_without():
    for name in APPS:
        for service in (SERVICES[name], SIDECARS[name]):
            env = service["environment"]
            assert env["APP_API_TOKEN"].startswith("${APP_API_TOKEN:?"), name
            assert env["DAPR_API_TOKEN"].startswith("${DAPR_API_TOKEN:?"), name
    example = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/compose.env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert example == {"APP_API_TOKEN": "", "DAPR_API_TOKEN": ""}  # never a value in git


def test_prometheus_scrapes_every_sidecar_and_the_gateways_metrics_and_spans_go_to_jaeger():
    prometheus = SERVICES["prometheus"]
    config_file = mounts(prometheus)["/etc/prometheus/prometheus.yml"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((ROOT / config_file).read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "daprml" and config["global"]["scrape_interval"] == "5s"
    targets = {g["targets"][0]: g["labels"] for g in job["static_configs"]}
    for name in APPS:
        # daprd's metrics port (its default, 9090) in the app's network namespace.
        assert targets[f"{name}:9090"] == {"app_id": name, "service": name, "kind": "daprd"}
        env = SERVICES[name]["environment"]
        assert env.get("DAPRML_METRICS_PORT") == (APPS[name].get("env") or {}).get("DAPRML_METRICS_PORT"), name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    # Of the apps' own /metrics, only the gateway's is reachable (it alone listens beyond loopback).
    gateway = SERVICES["gateway"]["environment"]
    apps_scraped = {address for address, labels in targets.items() if labels["kind"] == "app"}
    assert apps_scraped == {f"gateway:{gateway['DAPRML_METRICS_PORT']}"} and gateway["DAPRML_HOST"] == "0.0.0.0"
    assert gateway["DAPRML_PROMETHEUS_URL"] == "http://prometheus:9090"
    for sidecar in SIDECARS.values():
        env = sidecar["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "jaeger:4317" and env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
    assert "otel" not in yaml.safe_load((ROOT / COMMON["configFilePath"]).read_text())["spec"]["tracing"]


def test_every_app_has_a_health_check_that_covers_its_sidecar():
    assert "redis-cli" in SERVICES["redis"]["healthcheck"]["test"]
    for name in APPS:
        test = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert "/readyz" in test, name  # ready only when the sidecar answers too
        assert SIDECARS[name]["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("dockerfile", sorted({s["build"]["dockerfile"] for s in SERVICES.values() if "build" in s}))
def test_the_images_build_from_files_that_exist_and_their_contexts_keep_them(dockerfile):
    ignore = {line.rstrip("/") for line in (ROOT / f"{dockerfile}.dockerignore").read_text().splitlines()}
    for line in (ROOT / dockerfile).read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in ignore, source


def test_the_env_file_writer_takes_the_local_stacks_tokens(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compose_env", ROOT / "deploy/compose_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = module.write_env(tmp_path)
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    assert set(values) == {"APP_API_TOKEN", "DAPR_API_TOKEN"} and all(len(v) >= 32 for v in values.values())
    assert env.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / ".data/secrets.json").exists()
    assert module.write_env(tmp_path).read_text() == env.read_text()  # an existing .env is kept


def compose_client() -> list[str] | None:
    """`docker compose` (the v2 plugin), else a v2 `docker-compose` on PATH."""
    candidates = [["docker", "compose"]] if shutil.which("docker") else []
    candidates += [[path] for path in (shutil.which("docker-compose"),) if path]
    for command in candidates:
        try:
            out = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
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
    clean = {k: v for k, v in os.environ.items() if k not in ("APP_API_TOKEN", "DAPR_API_TOKEN", "DAPRML_SECRETS_FILE")}

    def config(env_file: Path) -> subprocess.CompletedProcess[str]:
        args = ["--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]
        return subprocess.run([*command, *args, "config"], capture_output=True, text=True, timeout=60, env=clean)

    env = tmp_path / "test.env"
    env.write_text("APP_API_TOKEN=app-token-for-the-test\nDAPR_API_TOKEN=dapr-token-for-the-test\n")
    out = config(env)
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)
    assert resolved["services"]["ingestion-daprd"]["environment"]["DAPR_API_TOKEN"] == "dapr-token-for-the-test"
    assert set(resolved["services"]) == set(SERVICES)
    # Without the tokens compose refuses, naming what is missing.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = config(empty)
    assert refused.returncode != 0 and "_API_TOKEN is missing a value" in refused.stderr + refused.stdout

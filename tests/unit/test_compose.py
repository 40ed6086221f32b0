"""docker-compose.yml cannot be run here (no container engine), so it is checked against
what the local profile runs: the same apps, ports, components and sidecar settings."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
RUN_FILE = yaml.safe_load((ROOT / "dapr.yaml").read_text())
SERVICES = COMPOSE["services"]


def flags(command: list[str]) -> dict[str, str]:
    return dict(
        arg.removeprefix("--").split("=", 1) if "=" in arg else (arg.removeprefix("--"), "") for arg in command[1:]
    )


def test_every_app_of_the_run_file_has_a_container_and_a_sidecar_in_its_network():
    for app in RUN_FILE["apps"]:
        name = app["appID"]
        assert SERVICES[name]["build"]["args"]["SERVICE"] == name
        sidecar = SERVICES[f"{name}-daprd"]
        assert sidecar["network_mode"] == f"service:{name}"
        args = flags(sidecar["command"])
        assert args["app-id"] == name and int(args["app-port"]) == app["appPort"]
        assert args["max-body-size"] == RUN_FILE["common"]["maxBodySize"]
        assert args["app-health-check-path"] == RUN_FILE["common"]["appHealthCheckPath"]
        assert args["config"] == "/config/config.yaml" and args["resources-path"] == "/components"


def test_the_sidecars_get_the_same_components_under_the_same_names():
    local = {
        yaml.safe_load(p.read_text())["metadata"]["name"]: yaml.safe_load(p.read_text())["spec"]
        for p in (ROOT / "components/local").glob("*.yaml")
    }
    mounted = {}
    for volume in SERVICES["ingestion-daprd"]["volumes"]:
        source, target = volume.split(":")[:2]
        if target == "/components":
            mounted |= {p.name: p for p in (ROOT / source).glob("*.yaml")}
        elif target.startswith("/components/"):
            mounted[Path(target).name] = ROOT / source
    compose = {
        yaml.safe_load(p.read_text())["metadata"]["name"]: yaml.safe_load(p.read_text())["spec"]
        for p in mounted.values()
    }
    assert compose.keys() == local.keys()
    for name, spec in compose.items():
        assert spec.get("type") == local[name].get("type"), name


def test_the_secret_store_reads_the_secret_compose_mounts():
    spec = yaml.safe_load((ROOT / "components/compose/secretstore.yaml").read_text())["spec"]
    path = next(m["value"] for m in spec["metadata"] if m["name"] == "secretsFile")
    assert path == "/run/secrets/daprml" and "daprml" in SERVICES["ingestion-daprd"]["secrets"]
    assert (ROOT / COMPOSE["secrets"]["daprml"]["file"]).exists()


def test_only_the_gateway_is_published_and_it_listens_beyond_loopback():
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == {"gateway"}
    assert SERVICES["gateway"]["environment"]["DAPRML_HOST"] == "0.0.0.0"


def test_the_image_builds_from_files_that_exist():
    dockerfile = (ROOT / SERVICES["gateway"]["build"]["dockerfile"]).read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source

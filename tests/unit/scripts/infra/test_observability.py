"""Prometheus and Jaeger for the local stack: what each stack tells Prometheus to scrape (from its
run file: every app's and every daprd's metrics port, every replica), the servers' own
configuration (everything on 127.0.0.1, bounded data), what the run file gives the sidecars and
apps when observability is on and nothing when it is off, and that they are optional."""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts import runfile
from scripts.infra import lifecycle, observability
from scripts.infra.spec import Server
from scripts.proc import DATA, ROOT, free_port
from scripts.stack import Stack

ON = observability.Wiring(metrics=True, traces=True)
OFF = observability.Wiring(metrics=False, traces=False)


@pytest.fixture
def targets(tmp_path, monkeypatch) -> Path:
    """Target files go to a folder of the test's own, not the project's."""
    folder = tmp_path / "targets"
    folder.mkdir()
    monkeypatch.setattr(observability, "TARGETS", folder)
    monkeypatch.setattr(observability, "targets_dir", lambda: folder)
    return folder


def isolated(tmp_path: Path, run_id: str, observe: observability.Wiring = ON, inference: int = 1) -> Stack:
    rename = lambda app_id: f"{app_id}-{run_id}"  # noqa: E731
    run_file = runfile.generate(tmp_path, tmp_path, rename, topic_prefix=f"{run_id}.", observe=observe)
    if inference > 1:
        runfile.add_replicas(run_file, {f"inference-{run_id}": inference}, [])
    return Stack(run_file, tmp_path)


def test_a_stack_is_scraped_at_every_apps_and_every_sidecars_metrics_port_replicas_included(tmp_path):
    stack = isolated(tmp_path, "t1", inference=2)
    spec = yaml.safe_load(stack.run_file.read_text())
    groups = stack.targets
    by_kind: dict[str, list[dict]] = {"app": [], "daprd": []}
    for g in groups:
        (address,) = g["targets"]
        assert address.startswith("127.0.0.1:")
        assert set(g["labels"]) == {"app_id", "service", "kind"}
        assert g["labels"]["app_id"].startswith(g["labels"]["service"] + "-")
        by_kind[g["labels"]["kind"]].append(g)
    daprd_ports = sorted(f"127.0.0.1:{a['metricsPort']}" for a in spec["apps"])
    assert sorted(g["targets"][0] for g in by_kind["daprd"]) == daprd_ports
    app_ports = sorted(
        f"127.0.0.1:{a['env'][runfile.METRICS_ENV]}"
        for a in spec["apps"]
        if runfile.METRICS_ENV in (a.get("env") or {})
    )
    assert sorted(g["targets"][0] for g in by_kind["app"]) == app_ports
    inference = [g for g in groups if g["labels"]["service"] == "inference"]
    assert len(inference) == 4 and {g["labels"]["app_id"] for g in inference} == {"inference-t1"}
    assert len({g["targets"][0] for g in groups}) == len(groups)  # no address twice
    assert len(by_kind["daprd"]) == len(spec["apps"]) == 8  # seven apps and a second inference replica


def test_a_stack_writes_its_targets_when_it_starts_and_removes_them_when_it_stops(tmp_path, targets):
    stack = isolated(tmp_path, "t2")
    stack.publish_targets()
    written = targets / f"{stack.name}.json"
    assert json.loads(written.read_text()) == stack.targets
    stack.stop()  # nothing runs: only the file goes
    assert not written.exists()


def test_observability_off_writes_no_targets(tmp_path, targets, monkeypatch):
    monkeypatch.setenv(observability.ENV, "off")
    isolated(tmp_path, "t3", OFF).publish_targets()
    assert list(targets.iterdir()) == []


def test_stacks_of_one_test_run_have_target_files_of_their_own(tmp_path):
    first, second = isolated(tmp_path / "a", "t4"), isolated(tmp_path / "b", "t4")
    assert first.topic_prefix == second.topic_prefix and first.name != second.name
    assert first.name.startswith("t4-")
    assert Stack(first.run_file, ROOT).name == "repo"


def test_a_leftover_target_file_of_a_killed_stack_is_removed_and_a_running_one_counts(targets, monkeypatch):
    with socket.socket() as live:
        live.bind(("127.0.0.1", 0))
        live.listen()
        up = observability.group(f"127.0.0.1:{live.getsockname()[1]}", "gateway-x", "gateway", "app")
        (targets / "running.json").write_text(json.dumps([up]))
        dead = [observability.group(f"127.0.0.1:{free_port()}", "gateway-y", "gateway", "app")]
        (targets / "killed.json").write_text(json.dumps(dead))
        (targets / "starting.json").write_text(json.dumps(dead))
        (targets / observability.INFRA_TARGETS).write_text(json.dumps([up]))
        old = (targets / "killed.json").stat().st_mtime - observability.STALE_AFTER_S - 1
        os.utime(targets / "killed.json", (old, old))
        # The running stack keeps Prometheus in use; infra's own servers do not.
        assert observability.live_stacks() == 1
    assert not (targets / "killed.json").exists()
    assert (targets / "starting.json").exists()  # young: a stack still starting


def listeners(config: object) -> list[str]:
    """Every `endpoint` and `host` in a configuration, wherever it is."""
    found = []
    if isinstance(config, dict):
        for key, value in config.items():
            if key in ("endpoint", "host"):
                found.append(str(value))
            found += listeners(value)
    elif isinstance(config, list):
        for item in config:
            found += listeners(item)
    return found


def test_jaeger_listens_on_loopback_only_with_its_traces_in_memory_and_bounded():
    config = observability.jaeger_config()
    addresses = listeners(config)
    assert addresses and all(a.startswith("127.0.0.1") for a in addresses), addresses
    ports = {int(a.rsplit(":", 1)[1]) for a in addresses if ":" in a}
    assert ports == {4317, 4318, 16686, 16685, 13133}
    assert config["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"] == 8888
    # Nothing but OTLP in: no zipkin or jaeger receivers, no remote sampling (more listeners).
    assert list(config["receivers"]) == ["otlp"]
    assert set(config["service"]["extensions"]) == {"jaeger_storage", "jaeger_query", "healthcheckv2"}
    (backend,) = config["extensions"]["jaeger_storage"]["backends"].values()
    assert 0 < backend["memory"]["max_traces"] <= 100_000
    server = observability.jaeger()
    assert server.port == observability.QUERY_PORT and server.exporter == 8888 and server.optional
    (path,) = server.files
    assert str(path).startswith(str(DATA)) and server.argv[1:] == ["--config", str(path)]


def test_prometheus_scrapes_every_target_file_every_5s_on_loopback_with_bounded_data():
    server = observability.prometheus()
    (conf,) = server.files.values()
    config = yaml.safe_load(conf)
    assert config["global"]["scrape_interval"] == "5s"
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "daprml"
    assert job["file_sd_configs"] == [
        {"files": [str(ROOT / ".data/prometheus/targets/*.json")], "refresh_interval": "30s"}
    ]
    flags = dict(a.removeprefix("--").split("=", 1) for a in server.argv[1:])
    assert flags["web.listen-address"] == "127.0.0.1:9090"
    assert flags["storage.tsdb.path"].startswith(str(DATA / "prometheus"))
    assert flags["storage.tsdb.retention.time"] == "1d" and flags["storage.tsdb.retention.size"] == "512MB"
    assert server.package == "prometheus" and server.optional


def configs(run_file: Path) -> list[dict]:
    spec = yaml.safe_load(run_file.read_text())
    return [yaml.safe_load(Path(a["configFilePath"]).read_text()) for a in spec["apps"]]


def test_with_observability_every_sidecar_exports_spans_and_the_apps_and_gateway_are_told_where(tmp_path):
    run_file = runfile.generate(tmp_path, tmp_path, lambda app_id: f"{app_id}-t5", observe=ON)
    spec = yaml.safe_load(run_file.read_text())
    env = spec["common"]["env"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    gateway = next(a for a in spec["apps"] if a["appID"] == "gateway-t5")
    assert gateway["env"]["DAPRML_PROMETHEUS_URL"] == "http://127.0.0.1:9090"
    assert gateway["env"]["DAPRML_TRACES_URL"] == "http://127.0.0.1:16686"
    assert all("DAPRML_PROMETHEUS_URL" not in (a.get("env") or {}) for a in spec["apps"] if a is not gateway)
    for config in configs(run_file):
        tracing = config["spec"]["tracing"]
        assert tracing["otel"] == {"endpointAddress": "127.0.0.1:4317", "isSecure": False, "protocol": "grpc"}
        assert tracing["samplingRate"] == "1"
        assert config["spec"]["accessControl"]["defaultAction"] == "deny"  # the rest as before


def test_without_observability_nothing_points_anywhere(tmp_path):
    run_file = runfile.generate(tmp_path, tmp_path, lambda app_id: f"{app_id}-t6", observe=OFF)
    text = run_file.read_text()
    assert "OTEL_" not in text and "DAPRML_PROMETHEUS_URL" not in text and "DAPRML_TRACES_URL" not in text
    for config in configs(run_file):
        assert "otel" not in config["spec"]["tracing"] and config["spec"]["tracing"]["samplingRate"] == "1"


def test_an_exporter_of_the_configurations_own_is_kept(tmp_path):
    hosted = {"endpointAddress": "collector.example:4317", "isSecure": True, "protocol": "grpc"}
    base = {"spec": {"tracing": {"samplingRate": "1", "otel": hosted}}}
    runfile.write_config(base, [], tmp_path / "config.yaml", traces=True)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["spec"]["tracing"]["otel"] == hosted


def test_metrics_only_tells_the_gateway_about_prometheus_alone():
    assert runfile.gateway_env(observability.Wiring(metrics=True, traces=False)) == {
        "DAPRML_PROMETHEUS_URL": "http://127.0.0.1:9090"
    }


@pytest.mark.parametrize(("value", "on"), [(None, True), ("on", True), ("off", False), ("OFF", False), ("0", False)])
def test_the_setting_turns_it_off(value, on, monkeypatch):
    if value is None:
        monkeypatch.delenv(observability.ENV, raising=False)
    else:
        monkeypatch.setenv(observability.ENV, value)
    assert observability.enabled() is on
    names = [s.name for s in lifecycle.servers("local")]
    assert ("prometheus" in names and "jaeger" in names) is on
    # `down` and `status` know them whatever the setting: `make down` stops them.
    assert {"prometheus", "jaeger"} <= {s.name for s in lifecycle.servers(every_profile=True)}
    if not on:
        assert observability.wiring() == OFF
        assert observability.summary() == ["prometheus: off (DAPRML_OBSERVABILITY=" + value + ")"] + [
            "traces: off (DAPRML_OBSERVABILITY=" + value + ")"
        ]


def test_an_optional_server_that_cannot_start_is_skipped_and_the_others_start(monkeypatch, capsys):
    def broken() -> None:
        raise lifecycle.SetupError("not built")

    optional = Server("jaeger", free_port(), ["/nonexistent/jaeger"], prepare=broken, optional=True)
    required = Server("redis", free_port(), ["/nonexistent/redis"], prepare=broken)
    started: list[str] = []
    monkeypatch.setattr(lifecycle, "servers", lambda profile=None, every_profile=False: [optional])
    lifecycle._start_missing(None, started)
    assert "infra: jaeger skipped: not built; the stack runs without it" in capsys.readouterr().out
    monkeypatch.setattr(lifecycle, "servers", lambda profile=None, every_profile=False: [required])
    with pytest.raises(lifecycle.SetupError, match="not built"):
        lifecycle._start_missing(None, started)
    assert started == []


def test_without_root_a_missing_prometheus_is_named_and_setup_goes_on(monkeypatch, capsys):
    monkeypatch.setenv(observability.ENV, "on")
    monkeypatch.setattr(lifecycle.shutil, "which", lambda program: None if program == "prometheus" else "/usr/bin/x")
    monkeypatch.setattr(lifecycle.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(lifecycle, "servers", lambda every_profile=False: [observability.prometheus()])
    lifecycle.install()
    out = capsys.readouterr().out
    assert "prometheus skipped: prometheus is not installed; install it with: sudo apt-get install -y prometheus" in out


@pytest.mark.parametrize("which", ["local", "compose"])
def test_prometheus_takes_the_configuration(which, tmp_path):
    promtool = shutil.which("promtool")  # Debian's prometheus package has it
    if promtool is None:
        pytest.skip("promtool is not installed (make setup installs prometheus as root)")
    if which == "local":
        (text,) = observability.prometheus().files.values()
        conf = tmp_path / "prometheus.yml"
        conf.write_text(text)
    else:
        conf = ROOT / "deploy" / "prometheus.compose.yml"
    done = subprocess.run([promtool, "check", "config", str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_jaeger_takes_the_configuration(tmp_path):
    program = observability.jaeger_program()
    if program is None:
        pytest.skip("Jaeger is not built here (scripts/install-dapr builds it when Go is installed)")
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(observability.jaeger_config()))
    done = subprocess.run([program, "validate", "--config", str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_up_prints_each_url_or_why_there_is_none(monkeypatch):
    monkeypatch.setenv(observability.ENV, "on")
    monkeypatch.setattr(observability, "port_open", lambda port: port == observability.PROMETHEUS_PORT)
    prometheus, traces = observability.summary()
    assert prometheus == "prometheus: http://127.0.0.1:9090"
    assert traces == "traces: not running (see the infra lines above)"
    monkeypatch.setattr(observability, "port_open", lambda port: True)
    assert observability.summary()[1].startswith("traces: http://127.0.0.1:16686 ")

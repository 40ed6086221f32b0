"""The run file an isolated stack gets: every Python app, and every replica of one, has a metrics
port of its own, none of them an app or daprd port; a run file made again keeps them."""

import yaml

from scripts import runfile


def metrics_ports(run_file) -> dict[str, list[int]]:
    spec = yaml.safe_load(run_file.read_text())
    found: dict[str, list[int]] = {}
    for app in spec["apps"]:
        port = (app.get("env") or {}).get(runfile.METRICS_ENV)
        found.setdefault(app["appID"], []).append(int(port) if port else 0)
    return found


def all_ports(run_file) -> list[int]:
    spec = yaml.safe_load(run_file.read_text())
    return [app[name] for app in spec["apps"] for name in runfile.PORT_FIELDS]


def test_each_app_that_serves_metrics_and_each_replica_gets_a_metrics_port_of_its_own(tmp_path):
    run_file = runfile.generate(tmp_path, tmp_path, lambda app_id: f"{app_id}-t1")
    runfile.add_replicas(run_file, {"inference-t1": 2}, [])
    ports = metrics_ports(run_file)
    # The apps whose dapr.yaml entry names a metrics port (every Python service at least).
    serving = {
        a["appID"]
        for a in yaml.safe_load(runfile.RUN_FILE.read_text())["apps"]
        if runfile.METRICS_ENV in (a.get("env") or {})
    }
    assert {"gateway", "ingestion", "training", "registry", "inference"} <= serving
    chosen = [p for app_id, found in ports.items() if app_id.removesuffix("-t1") in serving for p in found]
    assert all(found == [0] for app_id, found in ports.items() if app_id.removesuffix("-t1") not in serving)
    assert len(ports["inference-t1"]) == 2 and all(chosen)
    assert len(set(chosen)) == len(chosen) == len(serving) + 1
    assert not set(chosen) & set(all_ports(run_file))


def test_a_run_file_made_again_keeps_its_metrics_ports(tmp_path):
    first = metrics_ports(runfile.generate(tmp_path, tmp_path, lambda app_id: f"{app_id}-t2"))
    again = metrics_ports(runfile.generate(tmp_path, tmp_path, lambda app_id: f"{app_id}-t2"))
    assert first == again


def test_the_projects_run_file_fixes_them_beside_the_app_ports(tmp_path):
    ports = metrics_ports(runfile.generate(tmp_path, tmp_path, lambda app_id: app_id, fixed_ports=True))
    assert ports["gateway"] == [8100] and ports["inference"] == [8104]

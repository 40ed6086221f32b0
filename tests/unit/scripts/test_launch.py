"""The launcher reads dapr.yaml as the dapr CLI does: every field becomes the daprd flag the CLI
would pass, every app the environment the CLI would give it; generated files are rewritten only
when they change, and the resiliency policy is renamed with the app ids."""

from pathlib import Path

import pytest
import yaml

from scripts import launch
from scripts.proc import ROOT, write_if_changed
from scripts.runfile import RUN_FILE, copy_components


def test_each_app_of_dapr_yaml_gets_the_flags_the_dapr_cli_derives():
    apps = {a["appID"]: a for a in launch.apps(RUN_FILE)}
    assert set(apps) == {"ingestion", "training", "registry", "inference", "gateway", "notifier", "monitor"}
    argv = launch.daprd_argv("daprd", apps["training"])

    def flag(name: str) -> list[str]:
        return [argv[i + 1] for i, a in enumerate(argv) if a == name]

    assert flag("--app-id") == ["training"] and flag("--app-port") == ["8002"]
    assert flag("--dapr-http-port") == ["3512"] and flag("--dapr-grpc-port") == ["3522"]
    assert flag("--dapr-internal-grpc-port") == ["3562"] and flag("--metrics-port") == ["3572"]
    assert flag("--resources-path") == [str(ROOT / "components" / "local")]
    assert flag("--config") == [str(ROOT / "dapr" / "config.yaml")]
    assert flag("--placement-host-address") == ["127.0.0.1:3530"]
    assert flag("--scheduler-host-address") == ["127.0.0.1:3531"]
    assert flag("--max-body-size") == ["64Mi"] and flag("--app-health-check-path") == ["/healthz"]
    assert "--enable-app-health-check" in argv
    # dapr/config.yaml turns mTLS on: the CLI then points daprd at sentry, as does the launcher.
    assert "--enable-mtls" in argv and flag("--sentry-address") == [launch.SENTRY_ADDRESS]


def test_an_app_gets_the_environment_the_dapr_cli_gives_it():
    training = next(a for a in launch.apps(RUN_FILE) if a["appID"] == "training")
    env = launch.app_env(training, {"PATH": "/bin"})
    assert env["APP_ID"] == "training" and env["APP_PORT"] == "8002"
    assert env["DAPR_HTTP_PORT"] == "3512" and env["DAPR_GRPC_PORT"] == "3522" and env["APP_PROTOCOL"] == "http"
    assert env["PYTHONUNBUFFERED"] == "1" and env["PATH"] == "/bin"


def test_a_run_file_field_the_launcher_does_not_know_is_an_error_not_ignored(tmp_path):
    spec = yaml.safe_load(RUN_FILE.read_text())
    spec["apps"][0]["unixDomainSocket"] = "/tmp/x"
    (tmp_path / "dapr.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(launch.RunFileError, match="unixDomainSocket"):
        launch.apps(tmp_path / "dapr.yaml")


def test_a_generated_file_is_written_only_when_its_content_changes(tmp_path):
    target = tmp_path / "config.yaml"
    assert write_if_changed(target, "a: 1\n")
    stamp = target.stat().st_mtime_ns
    assert not write_if_changed(target, "a: 1\n")
    assert target.stat().st_mtime_ns == stamp
    assert write_if_changed(target, "a: 2\n") and target.read_text() == "a: 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no partial file left


def test_the_resiliency_policy_follows_the_app_ids_of_a_renamed_stack(tmp_path: Path):
    copy_components(ROOT / "components" / "local", tmp_path, lambda app_id: [f"{app_id}-run1"])
    policy = yaml.safe_load((tmp_path / "resiliency.yaml").read_text())
    original = yaml.safe_load((ROOT / "components" / "local" / "resiliency.yaml").read_text())
    apps = policy["spec"]["targets"]["apps"]
    assert apps == {f"{k}-run1": v for k, v in original["spec"]["targets"]["apps"].items()}
    assert apps["inference-run1"]["retry"] == "replicas"

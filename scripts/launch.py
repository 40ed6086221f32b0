"""Runs a Dapr run file (dapr.yaml's format) the way `dapr run -f` does, and keeps it running:

    python -m scripts.launch RUN_FILE

Each app gets its daprd, started with the flags the dapr CLI 1.16 derives from the same
fields, and its command, with the environment the CLI gives it (APP_ID, APP_PORT, DAPR_HTTP_PORT,
DAPR_GRPC_PORT, DAPR_METRICS_PORT, APP_PROTOCOL and the file's env). Unlike the CLI, which starts
each once, every daprd and every app is started again when it dies (scripts/supervise.py: same
ports, same app id, so the same identity from sentry; a back-off on repeated deaths), and an app
whose /healthz fails three times in a row is killed and started again. Logs go where the CLI
puts them: <appDirPath>/.dapr/logs/<appID>_daprd_<time>.log and ..._app_<time>.log.

SIGTERM or SIGINT stops everything (SIGTERM, then SIGKILL after a grace period). The children die
with this process too (PR_SET_PDEATHSIG), so a launcher killed with -9 leaves nothing running.

`dapr run -f dapr.yaml` still runs the same file for a user who wants the CLI: nothing restarts
a daprd there.
"""

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from scripts.infra import SENTRY_PORT
from scripts.proc import DATA, read_env_file
from scripts.supervise import Liveness, Supervised, run_until_stopped, wait_ended

# Where the dapr CLI points daprd when mTLS is on; infra starts sentry there.
SENTRY_ADDRESS = f"127.0.0.1:{SENTRY_PORT}"
STOP_GRACE_S = 20.0
LOOPBACK = ["--metrics-listen-address", "127.0.0.1", "--dapr-internal-grpc-listen-address", "127.0.0.1"]

# Run-file field -> daprd flag, as the dapr CLI 1.16 maps them (pkg/standalone/run.go). Booleans
# become a bare flag when true, lists one flag per item.
FLAGS = {
    "appID": "--app-id",
    "appPort": "--app-port",
    "appChannelAddress": "--app-channel-address",
    "daprHTTPPort": "--dapr-http-port",
    "daprGRPCPort": "--dapr-grpc-port",
    "daprInternalGRPCPort": "--dapr-internal-grpc-port",
    "metricsPort": "--metrics-port",
    "profilePort": "--profile-port",
    "enableProfiling": "--enable-profiling",
    "configFilePath": "--config",
    "appProtocol": "--app-protocol",
    "apiListenAddresses": "--dapr-listen-addresses",
    "logLevel": "--log-level",
    "appMaxConcurrency": "--app-max-concurrency",
    "placementHostAddress": "--placement-host-address",
    "schedulerHostAddress": "--scheduler-host-address",
    "resourcesPaths": "--resources-path",
    "maxBodySize": "--max-body-size",
    "readBufferSize": "--read-buffer-size",
    "enableAppHealthCheck": "--enable-app-health-check",
    "appHealthCheckPath": "--app-health-check-path",
    "appHealthProbeInterval": "--app-health-probe-interval",
    "appHealthProbeTimeout": "--app-health-probe-timeout",
    "appHealthThreshold": "--app-health-threshold",
    "enableApiLogging": "--enable-api-logging",
}
# Fields that are not daprd flags: where and what the app runs, and where logs go (always files here).
OTHER_FIELDS = {"appDirPath", "command", "env", "daprdLogDestination", "appLogDestination", "runtimePath"}
PATH_FIELDS = {"configFilePath", "resourcesPaths"}
# The CLI's environment for an app, from the app's fields.
APP_ENV = {
    "appID": "APP_ID",
    "appPort": "APP_PORT",
    "daprHTTPPort": "DAPR_HTTP_PORT",
    "daprGRPCPort": "DAPR_GRPC_PORT",
    "metricsPort": "DAPR_METRICS_PORT",
    "appChannelAddress": "APP_CHANNEL_ADDRESS",
    "appProtocol": "APP_PROTOCOL",
}


class RunFileError(ValueError):
    pass


def apps(run_file: Path) -> list[dict[str, Any]]:
    """Each app's fields with the common ones under them, relative paths made absolute (against
    the run file's folder, as the CLI resolves them)."""
    spec = yaml.safe_load(run_file.read_text())
    base = run_file.parent.resolve()
    common = spec.get("common") or {}
    merged = []
    for app in spec["apps"]:
        fields = {**common, **app, "env": {**(common.get("env") or {}), **(app.get("env") or {})}}
        unknown = set(fields) - set(FLAGS) - OTHER_FIELDS
        if unknown:
            raise RunFileError(f"{run_file}: {fields.get('appID')}: fields not supported here: {sorted(unknown)}")
        for key in PATH_FIELDS & set(fields):
            value = fields[key]
            fields[key] = [str(base / p) for p in value] if isinstance(value, list) else str(base / value)
        fields["appDirPath"] = str(base / fields.get("appDirPath", "."))
        merged.append(fields)
    return merged


def mtls_enabled(config_file: str | None) -> bool:
    if not config_file:
        return False
    config = yaml.safe_load(Path(config_file).read_text()) or {}
    return bool(((config.get("spec") or {}).get("mtls") or {}).get("enabled"))


def daprd_argv(daprd: str, fields: dict[str, Any]) -> list[str]:
    argv = [daprd]
    for key, flag in FLAGS.items():
        value = fields.get(key)
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    if mtls_enabled(fields.get("configFilePath")):
        argv += ["--enable-mtls", "--sentry-address", SENTRY_ADDRESS]
    # Beyond what the CLI passes: daprd's metrics and internal gRPC servers listen on every
    # interface by default; a local stack keeps everything on loopback.
    return argv + LOOPBACK


def app_env(fields: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update({name: str(fields[key]) for key, name in APP_ENV.items() if fields.get(key) is not None})
    env.update({k: str(v) for k, v in fields["env"].items()})
    return env


def supervised(run_file: Path, daprd: str, env: dict[str, str], say: Callable[[str], None]) -> list[Supervised]:
    """Two kept-running processes per app of the run file: its daprd and its command."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    kept: list[Supervised] = []
    for i, fields in enumerate(apps(run_file)):
        app_id, folder = fields["appID"], Path(fields["appDirPath"])
        logs = folder / ".dapr" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # Replicas share an app id: the index keeps their logs apart.
        suffix = f"{stamp}_{i}"
        daprd_log = logs / f"{app_id}_daprd_{suffix}.log"
        kept.append(
            Supervised(f"{app_id} daprd", daprd_argv(daprd, fields), env=env, cwd=folder, log=daprd_log, say=say)
        )
        if fields.get("command"):
            probe = None
            if fields.get("appPort") and fields.get("appHealthCheckPath"):
                probe = Liveness(f"http://127.0.0.1:{fields['appPort']}{fields['appHealthCheckPath']}")
            kept.append(
                Supervised(
                    f"{app_id} app",
                    [str(a) for a in fields["command"]],
                    env=app_env(fields, env),
                    cwd=folder,
                    log=logs / f"{app_id}_app_{suffix}.log",
                    liveness=probe,
                    say=say,
                )
            )
    return kept


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} launch: {message}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    env = dict(os.environ)
    daprd = env.get("DAPRML_DAPRD") or read_env_file(DATA / "dapr.env")["DAPRML_DAPRD"]
    try:
        kept = supervised(Path(argv[0]), daprd, env, _say)
    except (RunFileError, OSError, KeyError) as exc:
        print(f"launch: error: {exc}", file=sys.stderr)
        return 1
    _say(f"starting {len(kept)} processes from {argv[0]}")
    run_until_stopped(kept)
    wait_ended(kept, STOP_GRACE_S)
    _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

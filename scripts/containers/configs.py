"""The Dapr Configuration of each app's sidecar in docker-compose.yml, made from the same files
as the local stack's (scripts/runfile.py): dapr/config.yaml (mTLS, sqlite name resolution on the
volume the sidecars share, metrics, no hot reload, the component secrets denied to the apps)
plus access control from dapr/access.yaml, which the called app's sidecar enforces, so each app
has its own. They are committed (deploy/compose/config/<app>.yaml) so that `docker compose` runs
without this project's Python; a unit test fails when they differ from what this makes. So is
Jaeger's configuration for the observability profile (deploy/compose/jaeger.yaml), the local
one's (scripts/infra/observability.py) listening on its container's interfaces.

    python -m scripts.containers configs
"""

from pathlib import Path

import yaml

from scripts import runfile
from scripts.infra import observability
from scripts.proc import ROOT

FOLDER = ROOT / "deploy" / "compose" / "config"
JAEGER = ROOT / "deploy" / "compose" / "jaeger.yaml"
HEADER = "# Made by `python -m scripts.containers configs` from dapr/config.yaml and dapr/access.yaml: do not edit.\n"


def write_jaeger(path: Path = JAEGER) -> Path:
    path.write_text(
        "# Made by `python -m scripts.containers configs` from scripts/infra/observability.py: do not edit.\n"
        + yaml.safe_dump(observability.jaeger_config("0.0.0.0"), sort_keys=False)
    )
    return path


def write(target: Path = FOLDER) -> list[Path]:
    """Writes <app>.yaml for every app of dapr.yaml into `target`; returns the files."""
    spec = yaml.safe_load(runfile.RUN_FILE.read_text())
    base = yaml.safe_load((ROOT / spec["common"]["configFilePath"]).read_text())
    callers = yaml.safe_load(runfile.ACCESS_FILE.read_text()) or {}
    written = []
    for app in spec["apps"]:
        path = target / f"{app['appID']}.yaml"
        runfile.write_config(base, list(callers.get(app["appID"], [])), path, traces=False)
        text = path.read_text()
        if not text.startswith(HEADER):
            path.write_text(HEADER + text)
        written.append(path)
    return written

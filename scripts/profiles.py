"""Component profiles: each folder under components/ (but compose/, docker-compose.yml's copy
of `local`) holds the same component names (statestore, pubsub, pubsub-replicas,
secretstore, blobstore, and componentsecrets where the servers have passwords) and the
resiliency policy, on other infrastructure. One setting picks the profile for `make up`,
`make run` and the tests: DAPRML_PROFILE (default `local`). The services never know which.

A profile runs here when scripts/infra/ can start every server its components connect to
(RUNS_HERE); the cloud profiles (aws, azure, gcp) are checked against the components'
metadata schemas instead (tests/unit/test_profiles.py).
"""

import os
from pathlib import Path
from typing import Any

import yaml

from scripts.proc import ROOT, SetupError

ENV = "DAPRML_PROFILE"
DEFAULT = "local"
FOLDER = ROOT / "components"
NOT_PROFILES = ("compose",)
# Component types a local profile may use: the servers scripts/infra/ starts, and files.
RUNS_HERE = {
    "state.redis",
    "pubsub.redis",
    "state.postgresql",
    "pubsub.rabbitmq",
    "state.sqlite",
    "pubsub.jetstream",
    "secretstores.local.file",
    "bindings.localstorage",
}


def names() -> list[str]:
    return sorted(p.name for p in FOLDER.iterdir() if p.is_dir() and p.name not in NOT_PROFILES)


def runnable() -> list[str]:
    """The profiles whose every component runs here, `local` first."""
    found = [n for n in names() if all(c["spec"]["type"] in RUNS_HERE for c in components(n))]
    return sorted(found, key=lambda n: (n != DEFAULT, n))


def current(profile: str | None = None) -> str:
    """The profile asked for (DAPRML_PROFILE, default `local`), checked to exist."""
    name = profile or os.environ.get(ENV) or DEFAULT
    if name not in names():
        raise SetupError(f"{ENV}={name}: no such profile; the profiles are {', '.join(names())} (components/<name>)")
    return name


def folder(profile: str | None = None) -> Path:
    return FOLDER / current(profile)


def documents(profile: str) -> list[dict[str, Any]]:
    docs = []
    for path in sorted((FOLDER / profile).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    return docs


def components(profile: str) -> list[dict[str, Any]]:
    return [d for d in documents(profile) if d.get("kind") == "Component"]


def metadata_values(component: dict[str, Any]) -> dict[str, Any]:
    """A component's metadata, name -> value (or its secretKeyRef)."""
    return {m["name"]: m.get("value", m.get("secretKeyRef")) for m in component["spec"].get("metadata", [])}

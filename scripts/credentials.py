"""The local stack's credentials, made by setup when missing and kept in .data/ (git-ignored,
readable by their owner only):

- .data/secrets.json     the file the `secretstore` component reads: dapr/secrets.example.json
                         plus the development admin key's salted hash under "api-keys";
- .data/admin-key        that key itself, for the README's examples, the CLI and the tests;
- .data/component-secrets.json
                         the passwords of the servers the components connect to (Redis,
                         PostgreSQL, RabbitMQ, NATS), made once in the project's .data and
                         copied into a test stack's; the `componentsecrets` store reads it, and
                         the components name its keys by secretKeyRef (dapr/component-secrets.example.json
                         shows the keys; scripts/infra/ starts each server with its password);
- .data/tokens.json      the app token (APP_API_TOKEN: each sidecar sends it to its app, which
                         refuses calls without it) and the Dapr API token (DAPR_API_TOKEN: each
                         sidecar refuses calls from its app without it).

The dapr CLI hands its own environment to every daprd it starts, so one stack shares one pair
of tokens; on Kubernetes each app gets its own (deploy/, `dapr.io/api-token-secret`).
"""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from scripts.proc import ROOT
from services.gateway.keys import Role, issue

SECRETS_EXAMPLE = ROOT / "dapr" / "secrets.example.json"
COMPONENT_SECRETS_EXAMPLE = ROOT / "dapr" / "component-secrets.example.json"
COMPONENT_SECRETS = "component-secrets.json"
ADMIN_KEY_NAME = "development admin"


@dataclass(frozen=True)
class Credentials:
    admin_key: str
    app_token: str
    dapr_token: str

    def env(self) -> dict[str, str]:
        """What the dapr CLI passes on to every daprd and app it starts."""
        return {"APP_API_TOKEN": self.app_token, "DAPR_API_TOKEN": self.dapr_token}


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # also when the file was there before


def component_secrets(workdir: Path = ROOT) -> dict[str, str]:
    """The servers' passwords: the project's file, made with random values for the keys of
    dapr/component-secrets.example.json when missing (a key added there later is added), and
    copied into `workdir`'s .data for a stack run elsewhere (its components read it there)."""
    path = ROOT / ".data" / COMPONENT_SECRETS
    values = json.loads(path.read_text()) if path.exists() else {}
    wanted = json.loads(COMPONENT_SECRETS_EXAMPLE.read_text())
    if not wanted.keys() <= values.keys():
        values = {key: secrets.token_hex(24) for key in wanted} | values
        write_private(path, json.dumps(values, indent=2) + "\n")
    copy = workdir / ".data" / COMPONENT_SECRETS
    if copy != path and (not copy.exists() or json.loads(copy.read_text()) != values):
        write_private(copy, json.dumps(values, indent=2) + "\n")
    return values


def ensure(workdir: Path) -> Credentials:
    """The credentials of the stack in `workdir`, made first when missing. A secrets file made
    before keys existed gets the admin key added; one that already holds it is left alone."""
    data = workdir / ".data"
    component_secrets(workdir)
    secrets_file, key_file, tokens_file = data / "secrets.json", data / "admin-key", data / "tokens.json"
    store = json.loads(secrets_file.read_text()) if secrets_file.exists() else json.loads(SECRETS_EXAMPLE.read_text())
    key = key_file.read_text().strip() if key_file.exists() else ""
    key_id = key.split("_")[1] if key.count("_") >= 2 else ""
    if not key or key_id not in store.get("api-keys", {}):
        key, record = issue(ADMIN_KEY_NAME, [Role.ADMIN])
        store.setdefault("api-keys", {})[record.id] = record.model_dump_json(include={"name", "roles", "salt", "hash"})
        write_private(secrets_file, json.dumps(store, indent=2) + "\n")
        write_private(key_file, key + "\n")
    if tokens_file.exists():
        tokens = json.loads(tokens_file.read_text())
    else:
        tokens = {"app_api_token": secrets.token_urlsafe(32), "dapr_api_token": secrets.token_urlsafe(32)}
        write_private(tokens_file, json.dumps(tokens) + "\n")
    return Credentials(key, tokens["app_api_token"], tokens["dapr_api_token"])


def admin_key(workdir: Path = ROOT) -> str | None:
    """The key a local client uses: DAPRML_API_KEY, else the stack's development admin key."""
    given = os.environ.get("DAPRML_API_KEY")
    if given:
        return given
    path = workdir / ".data" / "admin-key"
    return path.read_text().strip() if path.exists() else None


def auth_headers(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}

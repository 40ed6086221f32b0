"""Makes what `docker compose up` needs and git must never hold, once:

- .data/secrets.json, .data/admin-key and .data/tokens.json, as the local stack makes them
  (scripts/credentials.py): the secret store's file with the development admin key's salted hash;
- .env beside docker-compose.yml (readable by its owner only): APP_API_TOKEN and
  DAPR_API_TOKEN from .data/tokens.json, in the shape of deploy/compose.env.example.

    .venv/bin/python deploy/compose_env.py          # leaves an existing .env alone
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.credentials import ensure  # noqa: E402


def write_env(workdir: Path) -> Path:
    env = workdir / ".env"
    if env.exists():
        return env
    creds = ensure(workdir)
    text = f"APP_API_TOKEN={creds.app_token}\nDAPR_API_TOKEN={creds.dapr_token}\n"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return env


if __name__ == "__main__":
    print(f"{write_env(ROOT)} (the admin key is in {ROOT / '.data' / 'admin-key'})")

"""Makes what `docker compose` needs for docker-compose.yml and git must never hold, from the
local stack's credentials (scripts/credentials.py makes them in .data/ when missing: the admin
key, the app and Dapr API tokens, Redis's password):

- .data/compose/ (only its owner may enter): the secret files compose mounts (the secret store's
  file with the admin key's hash, the component secrets, Redis's password);
- .data/compose/compose.env (owner only): APP_API_TOKEN, DAPR_API_TOKEN, the published port
  (DAPRML_GATEWAY_PORT, default 8000) and where the secret files are.

    .venv/bin/python deploy/compose_env.py
    docker compose --env-file .data/compose/compose.env up --build -d --wait

`python -m scripts.containers up` (make compose-up) does this itself.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.containers.stack import ComposeStack  # noqa: E402


def write_env(workdir: Path) -> Path:
    """The env file (and the secret files beside it) for the stack in `workdir`."""
    return ComposeStack(workdir, gateway_port=int(os.environ.get("DAPRML_GATEWAY_PORT", "8000"))).prepare()


if __name__ == "__main__":
    print(f"{write_env(ROOT)} (the admin key is in {ROOT / '.data' / 'admin-key'})")

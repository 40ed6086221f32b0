"""Local infrastructure for the stack: sentry (the certificate authority behind mTLS, which
access control needs), placement and scheduler, and the servers the component profile
(DAPRML_PROFILE, default `local`; scripts/profiles.py) connects to: Redis for `local`,
PostgreSQL and RabbitMQ for `postgres-rabbitmq`, NATS with JetStream for `nats-sqlite`; and,
unless DAPRML_OBSERVABILITY=off, Prometheus and Jaeger (optional: skipped with a message when
they cannot run here; observability.py).

    python -m scripts.infra up       start what is not running yet (installs a missing server
                                     from Debian packages when root)
    python -m scripts.infra down     stop what this script started, of any profile, nothing else
    python -m scripts.infra status   what runs where
    python -m scripts.infra install  install every profile's missing servers (make setup runs it)

Which servers, and their ports, come from the files the sidecars read (the profile's component
files, dapr.yaml), so the two can never disagree. Each server runs as our own process (never
the system service), on 127.0.0.1, with its data in .data/ and the password the components
name by secretKeyRef (.data/component-secrets.json, scripts/credentials.py).

The package: control_plane.py (sentry, placement, scheduler), backends.py (the profiles'
servers), nats.py (their JetStream streams), observability.py (Prometheus, Jaeger, the scrape
targets), spec.py (what a server is), lifecycle.py (up, down, status, install).
"""

import sys

from scripts.infra.control_plane import SENTRY_PORT, trust_anchors
from scripts.infra.lifecycle import down, install, servers, status, up
from scripts.infra.spec import Server
from scripts.proc import SetupError, clients, require_linux

__all__ = ["SENTRY_PORT", "Server", "clients", "down", "install", "main", "servers", "status", "trust_anchors", "up"]


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status, "install": install}
    if len(argv) != 1 or argv[0] not in commands:
        print(__doc__)
        return 2
    try:
        require_linux()
        commands[argv[0]]()
    except SetupError as exc:
        print(f"infra: error: {exc}", file=sys.stderr)
        return 1
    return 0

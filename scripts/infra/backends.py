"""The servers a component profile (scripts/profiles.py) connects to: Redis for `local`,
PostgreSQL and RabbitMQ (with its own epmd) for `postgres-rabbitmq`, NATS with JetStream for
`nats-sqlite`. Found from the profile's component files by component type, each on the port
its component names, so the two can never disagree. Each runs as our own process (never the
system service) on 127.0.0.1, with its data in .data/ and the password the components name by
secretKeyRef (.data/component-secrets.json, scripts/credentials.py)."""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from scripts import credentials, profiles
from scripts.infra.nats import nats_streams
from scripts.infra.spec import LOCALHOST, Server, port_of
from scripts.proc import DATA, ROOT, SetupError


def profile_servers(profile: str) -> list[Server]:
    """The servers a profile's components connect to, in the order they start."""
    found: dict[str, Server] = {}
    for component in profiles.components(profile):
        kind, meta = component["spec"]["type"], profiles.metadata_values(component)
        if kind in ("state.redis", "pubsub.redis"):
            found.setdefault("redis", redis(port_of(meta["redisHost"])))
        elif kind == "state.postgresql":
            found.setdefault("postgres", postgres(int(meta["port"])))
        elif kind == "pubsub.rabbitmq":
            port = port_of(meta["hostname"])
            found.setdefault("epmd", epmd(port + 10))
            found.setdefault("rabbitmq", rabbitmq(port, port + 10))
        elif kind == "pubsub.jetstream":
            found.setdefault("nats", nats(urlsplit(meta["natsURL"]).port or 4222))
    return list(found.values())


def secret(key: str) -> str:
    return credentials.component_secrets()[key]


def redis(port: int) -> Server:
    conf = DATA / "redis" / "redis.conf"
    return Server(
        "redis",
        port,
        ["redis-server", str(conf)],
        files={
            conf: "\n".join(
                [
                    f"port {port}",
                    f"bind {LOCALHOST}",
                    "protected-mode yes",
                    "appendonly yes",
                    f"dir {DATA / 'redis'}",
                    'save ""',
                    f"requirepass {secret('redis-password')}",
                    "",
                ]
            )
        },
        package="redis-server",
    )


def as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def postgres_bin(program: str) -> str:
    """Debian keeps PostgreSQL's programs out of PATH, in a folder per major version."""
    found = shutil.which(program) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))), None)
    return str(found or program)


def postgres_data() -> Path:
    """Where PostgreSQL keeps its data: .data/postgres, unless it runs as the `postgres` user
    (we are root) and that user cannot reach the checkout (one in a private folder, such as
    `mktemp -d` makes); then a folder of this checkout's own in the system's temporary folder."""
    data = DATA / "postgres"
    if os.geteuid() != 0 or subprocess.run([*as_postgres_user(), "test", "-x", str(DATA)], cwd="/").returncode == 0:
        return data
    return Path(tempfile.gettempdir()) / f"daprml-postgres-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]}"


def initdb(data: Path) -> None:
    """A new database cluster in `data` with our user and password, unless there is one."""
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    pwfile = data.parent / f"{data.name}.pw"  # beside it (initdb wants the folder empty)
    pwfile.write_text(secret("postgres-password") + "\n")
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    os.chmod(pwfile, 0o600)
    try:
        argv = [
            *as_postgres_user(),
            postgres_bin("initdb"),
            "-D",
            str(data),
            "-U",
            "daprml",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=peer",
            "-E",
            "UTF8",
        ]
        # initdb returns to the folder it started in: one the postgres user may enter.
        done = subprocess.run(argv, capture_output=True, text=True, cwd=data)
    finally:
        pwfile.unlink(missing_ok=True)
    if done.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise SetupError(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")


def postgres(port: int) -> Server:
    data = postgres_data()
    return Server(
        "postgres",
        port,
        [
            *as_postgres_user(),
            postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={LOCALHOST}",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",  # development data; a crash of the machine may lose the last writes
        ],
        package="postgresql",
        prepare=lambda: initdb(data),
    )


def epmd(port: int) -> Server:
    """Erlang's port mapper for RabbitMQ, started by us (RabbitMQ would start one as a daemon
    that nothing stops) on a port of its own."""
    return Server("epmd", port, ["epmd", "-port", str(port), "-address", LOCALHOST], package="rabbitmq-server")


def rabbitmq(port: int, epmd_port: int) -> Server:
    base = DATA / "rabbitmq"
    conf = base / "rabbitmq.conf"
    return Server(
        "rabbitmq",
        port,
        ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        files={
            conf: "\n".join(
                [
                    f"listeners.tcp.1 = {LOCALHOST}:{port}",
                    "loopback_users = none",
                    "default_user = daprml",
                    f"default_pass = {secret('rabbitmq-password')}",
                    "",
                ]
            ),
            base / "enabled_plugins": "[].\n",
        },
        env={
            "HOME": str(base),  # its Erlang cookie
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_NODENAME": "daprml@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": LOCALHOST,
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(port + 20),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": LOCALHOST,
        },
        package="rabbitmq-server",
        timeout_s=90,
    )


def nats(port: int) -> Server:
    conf = DATA / "nats" / "nats.conf"
    token = secret("nats-token")
    return Server(
        "nats",
        port,
        ["nats-server", "-c", str(conf)],
        files={
            conf: "\n".join(
                [
                    f"listen: {LOCALHOST}:{port}",
                    f'jetstream {{ store_dir: "{DATA / "nats"}" }}',
                    f'authorization {{ token: "{token}" }}',
                    "",
                ]
            )
        },
        package="nats-server",
        ready=lambda: nats_streams(port, token),
    )

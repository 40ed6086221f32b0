"""Local infrastructure for the stack: sentry (the certificate authority behind mTLS, which
access control needs), placement and scheduler, and the servers the component profile
(DAPRML_PROFILE, default `local`; scripts/profiles.py) connects to: Redis for `local`,
PostgreSQL and RabbitMQ for `postgres-rabbitmq`, NATS with JetStream for `nats-sqlite`.

    python -m scripts.infra up       start what is not running yet (installs a missing server
                                     from Debian packages when root)
    python -m scripts.infra down     stop what this script started, of any profile, nothing else
    python -m scripts.infra status   what runs where
    python -m scripts.infra install  install every profile's missing servers (make setup runs it)

Which servers, and their ports, come from the files the sidecars read (the profile's component
files, dapr.yaml), so the two can never disagree. Each server runs as our own process (never
the system service), on 127.0.0.1, with its data in .data/ and the password the components
name by secretKeyRef (.data/component-secrets.json, scripts/credentials.py).
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from scripts import credentials, profiles
from scripts.proc import (
    DATA,
    ROOT,
    SetupError,
    listener_pid,
    port_open,
    read_env_file,
    read_pid,
    require_free,
    require_linux,
    start,
    stop,
    tail,
    wait_until,
    who_listens,
)

PIDS = DATA / "infra"
LOGS = DATA / "logs"
# The dapr CLI points every daprd at sentry on localhost:50001 when the Configuration asks for
# mTLS; it has no setting for another address.
SENTRY_PORT = 50001
OUR_CREDENTIALS = DATA / "sentry"  # sentry writes its root (ca.crt) and issuer here at first start


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    argv: list[str]
    # Files written (mode 600) before it starts: its configuration, with its password.
    files: dict[Path, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    package: str = ""  # the Debian package that has its program
    prepare: Callable[[], None] | None = None  # run before it starts (initdb)
    ready: Callable[[], None] | None = None  # run once it listens (NATS streams)
    timeout_s: float = 30

    @property
    def pidfile(self) -> Path:
        return PIDS / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"

    @property
    def stamp(self) -> Path:
        """The command line it was started with: a server of ours started otherwise (an older
        checkout's flags) is started again."""
        return PIDS / f"{self.name}.argv"

    @property
    def fingerprint(self) -> list[str]:
        """What the stamp records: the command line and a digest of the files it reads (a
        password changed, or a Redis of ours started before it had one, is started again)."""
        digest = hashlib.sha256(json.dumps(sorted((str(k), v) for k, v in self.files.items())).encode())
        return [*self.argv, f"files:{digest.hexdigest()[:16]}"] if self.files else self.argv


def trust_anchors() -> Path:
    """The root certificate of the sentry on SENTRY_PORT: ours, or, when another checkout's
    sentry answers there (used as it is, as its Redis would be), the one in the folder its
    command line names."""
    ours = OUR_CREDENTIALS / "ca.crt"
    pid = listener_pid(SENTRY_PORT) if port_open(SENTRY_PORT) else None
    if pid is None or pid == read_pid(PIDS / "sentry.pid"):
        return ours
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        folder = argv[argv.index(b"--issuer-credentials") + 1].decode()
    except (OSError, ValueError, IndexError):
        return ours
    return Path(folder) / "ca.crt"


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def servers(profile: str | None = None, every_profile: bool = False) -> list[Server]:
    """The control plane, then the servers the profile's components need (those of every
    runnable profile with `every_profile`, for `down` and `status`)."""
    common = yaml.safe_load((ROOT / "dapr.yaml").read_text())["common"]
    placement, scheduler = (
        _port_of(common["placementHostAddress"]),
        _port_of(common["schedulerHostAddress"]),
    )
    env = read_env_file(DATA / "dapr.env")
    # The control plane speaks mTLS, with certificates from sentry (self-signed root in .data/sentry).
    tls = [
        "--tls-enabled",
        "--trust-anchors-file",
        str(trust_anchors()),
        "--trust-domain",
        "localhost",
        "--sentry-address",
        f"127.0.0.1:{SENTRY_PORT}",
    ]
    # Each server's side ports (health, metrics, raft, etcd) sit next to its main port, so
    # that nothing lands on the usual defaults (8080, 9090, 2379) other tools use.
    control = [
        Server(
            "sentry",
            SENTRY_PORT,
            [
                env["DAPRML_SENTRY"],
                "--config",
                str(ROOT / "dapr" / "sentry.yaml"),
                "--issuer-credentials",
                str(OUR_CREDENTIALS),
                "--trust-domain",
                "localhost",
                "--port",
                str(SENTRY_PORT),
                "--listen-address",
                "127.0.0.1",
                "--healthz-port",
                str(SENTRY_PORT + 10),
                "--healthz-listen-address",
                "127.0.0.1",
                "--metrics-port",
                str(SENTRY_PORT + 20),
                "--metrics-listen-address",
                "127.0.0.1",
            ],
        ),
        Server(
            "placement",
            placement,
            [
                env["DAPRML_PLACEMENT"],
                "--port",
                str(placement),
                "--listen-address",
                "127.0.0.1",
                "--healthz-port",
                str(placement + 10),
                "--healthz-listen-address",
                "127.0.0.1",
                "--metrics-port",
                str(placement + 20),
                "--metrics-listen-address",
                "127.0.0.1",
                "--initial-cluster",
                f"dapr-placement-0=127.0.0.1:{placement + 2}",
                *tls,
            ],
        ),
        Server(
            "scheduler",
            scheduler,
            [
                env["DAPRML_SCHEDULER"],
                "--port",
                str(scheduler),
                "--listen-address",
                "127.0.0.1",
                "--healthz-port",
                str(scheduler + 10),
                "--healthz-listen-address",
                "127.0.0.1",
                "--metrics-port",
                str(scheduler + 20),
                "--metrics-listen-address",
                "127.0.0.1",
                "--etcd-data-dir",
                str(DATA / "scheduler"),
                "--etcd-client-port",
                str(scheduler + 2),
                "--etcd-client-listen-address",
                "127.0.0.1",
                "--etcd-initial-cluster",
                f"dapr-scheduler-server-0=http://127.0.0.1:{scheduler + 3}",
                "--override-broadcast-host-port",
                f"127.0.0.1:{scheduler}",
                *tls,
            ],
        ),
    ]
    names = profiles.runnable() if every_profile else [profiles.current(profile)]
    needed: dict[str, Server] = {}
    for name in names:
        for server in profile_servers(name):
            needed.setdefault(server.name, server)
    return control + list(needed.values())


def profile_servers(profile: str) -> list[Server]:
    """The servers a profile's components connect to, found by component type, each on the
    port its component names."""
    found: dict[str, Server] = {}
    for component in profiles.components(profile):
        kind, meta = component["spec"]["type"], profiles.metadata_values(component)
        if kind in ("state.redis", "pubsub.redis"):
            found.setdefault("redis", _redis(_port_of(meta["redisHost"])))
        elif kind == "state.postgresql":
            found.setdefault("postgres", _postgres(int(meta["port"])))
        elif kind == "pubsub.rabbitmq":
            port = _port_of(meta["hostname"])
            found.setdefault("epmd", _epmd(port + 10))
            found.setdefault("rabbitmq", _rabbitmq(port, port + 10))
        elif kind == "pubsub.jetstream":
            found.setdefault("nats", _nats(urlsplit(meta["natsURL"]).port or 4222))
    return list(found.values())


def _secret(key: str) -> str:
    return credentials.component_secrets()[key]


def _redis(port: int) -> Server:
    conf = DATA / "redis" / "redis.conf"
    return Server(
        "redis",
        port,
        ["redis-server", str(conf)],
        files={
            conf: "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    "protected-mode yes",
                    "appendonly yes",
                    f"dir {DATA / 'redis'}",
                    'save ""',
                    f"requirepass {_secret('redis-password')}",
                    "",
                ]
            )
        },
        package="redis-server",
    )


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def _postgres_bin(program: str) -> str:
    found = shutil.which(program) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"))), None)
    return str(found or program)


def _postgres_data() -> Path:
    """Where PostgreSQL keeps its data: .data/postgres, unless it runs as the `postgres` user
    (we are root) and that user cannot reach the checkout (one in a private folder, such as
    `mktemp -d` makes); then a folder of this checkout's own in the system's temporary folder."""
    data = DATA / "postgres"
    if os.geteuid() != 0 or subprocess.run([*_as_postgres_user(), "test", "-x", str(DATA)], cwd="/").returncode == 0:
        return data
    return Path(tempfile.gettempdir()) / f"daprml-postgres-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]}"


def _postgres(port: int) -> Server:
    data = _postgres_data()

    def initdb() -> None:
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        pwfile = data.parent / f"{data.name}.pw"  # beside it (initdb wants the folder empty)
        pwfile.write_text(_secret("postgres-password") + "\n")
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(pwfile, 0o600)
        try:
            argv = [
                *_as_postgres_user(),
                _postgres_bin("initdb"),
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

    return Server(
        "postgres",
        port,
        [
            *_as_postgres_user(),
            _postgres_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",  # development data; a crash of the machine may lose the last writes
        ],
        package="postgresql",
        prepare=initdb,
    )


def _epmd(port: int) -> Server:
    """Erlang's port mapper for RabbitMQ, started by us (RabbitMQ would start one as a daemon
    that nothing stops) on a port of its own."""
    return Server("epmd", port, ["epmd", "-port", str(port), "-address", "127.0.0.1"], package="rabbitmq-server")


def _rabbitmq(port: int, epmd_port: int) -> Server:
    base = DATA / "rabbitmq"
    conf = base / "rabbitmq.conf"
    return Server(
        "rabbitmq",
        port,
        ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
        files={
            conf: "\n".join(
                [
                    f"listeners.tcp.1 = 127.0.0.1:{port}",
                    "loopback_users = none",
                    "default_user = daprml",
                    f"default_pass = {_secret('rabbitmq-password')}",
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
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(port + 20),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        },
        package="rabbitmq-server",
        timeout_s=90,
    )


def _nats(port: int) -> Server:
    conf = DATA / "nats" / "nats.conf"
    token = _secret("nats-token")
    return Server(
        "nats",
        port,
        ["nats-server", "-c", str(conf)],
        files={
            conf: "\n".join(
                [
                    f"listen: 127.0.0.1:{port}",
                    f'jetstream {{ store_dir: "{DATA / "nats"}" }}',
                    f'authorization {{ token: "{token}" }}',
                    "",
                ]
            )
        },
        package="nats-server",
        ready=lambda: nats_streams(port, token),
    )


def nats_streams(port: int, token: str) -> None:
    """JetStream's Dapr component publishes to and consumes from streams that must exist: one
    per topic, taking the topic with any prefix (a test stack's `<run id>.<topic>`). One stream
    each, because a consumer's durable name (the app id) is unique within a stream and one app
    subscribes to several topics. Made over the NATS protocol, idempotently."""
    from services.common import events

    topics = [t.value for t in events.Topic] + [getattr(events, "DEAD_LETTERS", "dead-letters")]
    for topic in topics:
        config = {"name": f"daprml-{topic}", "subjects": [topic, f"*.{topic}"], "max_age": 0}
        config |= {"storage": "file", "max_msgs_per_subject": 10000, "duplicate_window": 120_000_000_000}
        reply = _nats_request(port, token, f"$JS.API.STREAM.CREATE.{config['name']}", json.dumps(config))
        error = reply.get("error")
        if error and error.get("err_code") != 10058:  # stream name already in use: made before
            raise SetupError(f"NATS did not create the stream for {topic}: {error}")


def _nats_request(port: int, token: str, subject: str, payload: str) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        stream = s.makefile("rb")
        stream.readline()  # INFO
        connect = {"verbose": False, "pedantic": False, "auth_token": token, "headers": False}
        body = payload.encode()
        s.sendall(
            f"CONNECT {json.dumps(connect)}\r\nSUB _INBOX.daprml 1\r\n".encode()
            + f"PUB {subject} _INBOX.daprml {len(body)}\r\n".encode()
            + body
            + b"\r\nPING\r\n"
        )
        while True:
            line = stream.readline()
            if not line:
                raise SetupError("NATS closed the connection (wrong token?)")
            if line.startswith(b"-ERR"):
                raise SetupError(f"NATS refused us: {line.decode().strip()}")
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            if line.startswith(b"MSG"):
                size = int(line.split()[-1])
                return json.loads(stream.read(size + 2)[:size])


def ensure_package(server: Server) -> None:
    """Installs the Debian package with the server's program when it is missing (as root), like
    redis-server. The package's own service, if the install starts one, is not ours and not
    used: ours runs on other ports with data in .data/."""
    program = _postgres_bin("postgres") if server.name == "postgres" else server.argv[0]
    if not server.package or shutil.which(program) or Path(program).exists():
        return
    if os.geteuid() != 0:
        raise SetupError(f"{server.name} is not installed; install it with: sudo apt-get install -y {server.package}")
    print(f"infra: installing {server.package} from Debian packages", flush=True)
    steps = [] if _APT_UPDATED else [["apt-get", "update", "-qq"]]
    for argv in [*steps, ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", server.package]]:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SetupError(f"'{' '.join(argv)}' failed: {last[0]}")
        if argv[1] == "update":
            _APT_UPDATED.append(True)


_APT_UPDATED: list[bool] = []  # `apt-get update` once per process, not once per package


def redis_answer(port: int, password: str) -> str | None:
    """What a Redis on the port says to AUTH with our password and PING: "+PONG" when it takes
    our password, its error otherwise; None when nothing answers like a Redis."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = s.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError:
        return None
    lines = answer.decode(errors="replace").split("\r\n")
    if not lines[0].startswith(("+", "-")):
        return None
    return "+PONG" if lines[0] == "+OK" and lines[1:2] == ["+PONG"] else lines[0]


def _already_serving(server: Server) -> bool:
    """Whether what listens on the server's port is such a server we can use: a Redis that
    takes our password, a placement or scheduler by its process name. A Redis that does not
    is a SetupError: the components could not use it."""
    if server.name == "redis":
        answer = redis_answer(server.port, _secret("redis-password"))
        if answer is None or answer == "+PONG":
            return answer == "+PONG"
        raise SetupError(
            f"a Redis that is not ours answers on 127.0.0.1:{server.port} ({who_listens(server.port)}) and refuses "
            f"the password in .data/component-secrets.json ({answer}); stop it, or start it with that password"
        )
    if server.name in ("sentry", "placement", "scheduler"):
        return port_open(server.port) and who_listens(server.port).endswith(f"({server.name})")
    return False  # PostgreSQL, RabbitMQ, NATS: only our own, with our passwords


def up(profile: str | None = None) -> list[str]:
    """Starts what is not running of the control plane and the profile's servers; returns the
    names of the servers it started. When one fails, those it started before are stopped again:
    a failed start leaves nothing behind (an epmd left running took its port from the next try)."""
    started: list[str] = []
    try:
        _start_missing(profile, started)
    except BaseException:
        down(started)
        raise
    return started


def _start_missing(profile: str | None, started: list[str]) -> None:
    for server in servers(profile):
        if read_pid(server.pidfile) and _stamp_of(server) != server.fingerprint:
            print(f"infra: {server.name} runs with other flags; starting it again")
            stop(server.pidfile)
        if read_pid(server.pidfile):
            print(f"infra: {server.name} already running on 127.0.0.1:{server.port}")
            if server.ready:
                server.ready()
            continue
        if _already_serving(server):
            # Another checkout's (or a user's own): used as it is, and left running at `down`.
            print(
                f"infra: using the {server.name} already answering on 127.0.0.1:{server.port} (not ours: left running)"
            )
            continue
        if server.package:
            ensure_package(server)
            # Made again: a program just installed may live elsewhere (PostgreSQL's bin folder).
            server = next(s for s in servers(profile) if s.name == server.name)
        require_free(server.port, server.name)
        for data in ("redis", "scheduler", "sentry"):
            (DATA / data).mkdir(parents=True, exist_ok=True)
        for path, text in server.files.items():
            credentials.write_private(path, text)
        if server.prepare:
            server.prepare()
        start(server.argv, server.log, server.pidfile, env=os.environ | server.env if server.env else None)
        server.stamp.write_text(json.dumps(server.fingerprint))
        if not wait_until(
            lambda s=server: port_open(s.port) or not read_pid(s.pidfile), server.timeout_s
        ) or not read_pid(server.pidfile):
            stop(server.pidfile)
            raise SetupError(
                f"{server.name} did not start listening on 127.0.0.1:{server.port}; "
                f"its log ({server.log}):\n{tail(server.log)}"
            )
        if server.ready:
            server.ready()
        print(f"infra: started {server.name} on 127.0.0.1:{server.port}")
        started.append(server.name)


def _stamp_of(server: Server) -> list[str] | None:
    try:
        return json.loads(server.stamp.read_text())
    except (OSError, ValueError):
        return None


def down(names: list[str] | None = None) -> None:
    """Stops the servers of ours named (all of ours, of every profile, by default), in reverse
    order of start (RabbitMQ before its epmd)."""
    for server in reversed(servers(every_profile=True)):
        if names is not None and server.name not in names:
            continue
        users = clients(server.port) if read_pid(server.pidfile) else 0
        if users:
            # Another stack (a concurrent test session, a `make up`) still talks to it: stopping
            # it would break that one. Left running; `make down` stops it once they are gone.
            print(f"infra: {server.name} still has {users} client connection(s); left running")
            continue
        if stop(server.pidfile):
            print(f"infra: stopped {server.name}")


def clients(port: int) -> int:
    """Established TCP connections to 127.0.0.1:port, counted on the client side (their remote
    port is the server's), from /proc/net/tcp."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def status() -> None:
    for server in servers(every_profile=True):
        pid = read_pid(server.pidfile)
        where = f"127.0.0.1:{server.port}"
        if pid:
            print(f"{server.name:10} running (pid {pid}) on {where}")
        elif port_open(server.port):
            print(f"{server.name:10} something else listens on {where}")
        else:
            print(f"{server.name:10} stopped")


def install() -> None:
    """Installs the server packages of every profile that are missing. Setup runs it before any
    test: the unit tests read the servers' programs too, and a fresh machine has none."""
    for server in servers(every_profile=True):
        ensure_package(server)


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

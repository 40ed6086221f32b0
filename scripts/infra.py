"""Local infrastructure for the stack: Redis (state and pub/sub), sentry (the certificate
authority behind mTLS, which access control needs), placement and scheduler.

    python -m scripts.infra up       start what is not running yet (installs redis-server if missing)
    python -m scripts.infra down     stop what this script started, nothing else
    python -m scripts.infra status   what runs where

Ports come from the files the sidecars read (components/local/statestore.yaml, dapr.yaml),
so the two can never disagree. Everything binds to 127.0.0.1; data lives in .data/.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

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


def servers() -> list[Server]:
    state = yaml.safe_load((ROOT / "components/local/statestore.yaml").read_text())
    redis_host = next(m["value"] for m in state["spec"]["metadata"] if m["name"] == "redisHost")
    common = yaml.safe_load((ROOT / "dapr.yaml").read_text())["common"]
    redis, placement, scheduler = (
        _port_of(redis_host),
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
    return [
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
            "redis",
            redis,
            [
                "redis-server",
                "--port",
                str(redis),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--dir",
                str(DATA / "redis"),
                "--save",
                "",
                "--protected-mode",
                "yes",
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


def ensure_redis_server() -> None:
    if shutil.which("redis-server"):
        return
    if os.geteuid() != 0:
        raise SetupError("redis-server is not installed; install it with: sudo apt-get install -y redis-server")
    print("infra: installing redis-server from Debian packages", flush=True)
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
        done = subprocess.run(
            argv, capture_output=True, text=True, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SetupError(f"'{' '.join(argv)}' failed: {last[0]}")


def _redis_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _already_serving(server: Server) -> bool:
    """Whether what listens on the server's port is such a server: a Redis that answers PING,
    a placement or scheduler by its process name."""
    if server.name == "redis":
        return _redis_answers(server.port)
    return port_open(server.port) and who_listens(server.port).endswith(f"({server.name})")


def up() -> list[str]:
    """Starts what is not running; returns the names of the servers it started."""
    started = []
    for server in servers():
        if read_pid(server.pidfile) and _stamp_of(server) != server.argv:
            print(f"infra: {server.name} runs with other flags; starting it again")
            stop(server.pidfile)
        if read_pid(server.pidfile):
            print(f"infra: {server.name} already running on 127.0.0.1:{server.port}")
            continue
        if _already_serving(server):
            # Another checkout's (or a user's own): used as it is, and left running at `down`.
            print(
                f"infra: using the {server.name} already answering on 127.0.0.1:{server.port} (not ours: left running)"
            )
            continue
        if server.name == "redis":
            ensure_redis_server()
        require_free(server.port, server.name)
        for data in ("redis", "scheduler", "sentry"):
            (DATA / data).mkdir(parents=True, exist_ok=True)
        start(server.argv, server.log, server.pidfile)
        server.stamp.write_text(json.dumps(server.argv))
        if not wait_until(lambda s=server: port_open(s.port) or not read_pid(s.pidfile), 30) or not read_pid(
            server.pidfile
        ):
            stop(server.pidfile)
            raise SetupError(
                f"{server.name} did not start listening on 127.0.0.1:{server.port}; "
                f"its log ({server.log}):\n{tail(server.log)}"
            )
        print(f"infra: started {server.name} on 127.0.0.1:{server.port}")
        started.append(server.name)
    return started


def _stamp_of(server: Server) -> list[str] | None:
    try:
        return json.loads(server.stamp.read_text())
    except (OSError, ValueError):
        return None


def down(names: list[str] | None = None) -> None:
    for server in servers():
        if names is not None and server.name not in names:
            continue
        if stop(server.pidfile):
            print(f"infra: stopped {server.name}")


def status() -> None:
    for server in servers():
        pid = read_pid(server.pidfile)
        where = f"127.0.0.1:{server.port}"
        if pid:
            print(f"{server.name:10} running (pid {pid}) on {where}")
        elif port_open(server.port):
            print(f"{server.name:10} something else listens on {where}")
        else:
            print(f"{server.name:10} stopped")


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status}
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

"""Starting, stopping and reporting on the control plane, the profile's servers and the
optional observability servers: pidfiles and start stamps in .data/infra, logs in .data/logs,
servers of someone else's used as they are and left running, and the Debian packages of
missing programs installed (as root)."""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

from scripts import credentials, profiles
from scripts.infra import backends, control_plane, observability
from scripts.infra.spec import Server
from scripts.proc import (
    DATA,
    SetupError,
    clients,
    listener_pid,
    port_open,
    read_pid,
    require_free,
    start,
    stop,
    tail,
    wait_until,
    who_listens,
)


def servers(profile: str | None = None, every_profile: bool = False) -> list[Server]:
    """The control plane, then the servers the profile's components need, then Prometheus and
    Jaeger unless observability is off (with `every_profile`, for `down`, `status` and
    `install`: those of every runnable profile, and the observability servers whatever the
    setting, so that `down` stops them)."""
    names = profiles.runnable() if every_profile else [profiles.current(profile)]
    needed: dict[str, Server] = {}
    for name in names:
        for server in backends.profile_servers(name):
            needed.setdefault(server.name, server)
    observing = observability.servers() if every_profile or observability.enabled() else []
    return control_plane.control_plane() + list(needed.values()) + observing


def ensure_package(server: Server) -> None:
    """Installs the Debian package with the server's program when it is missing (as root), like
    redis-server. The package's own service, if the install starts one, is not ours and not
    used: ours runs on other ports with data in .data/."""
    program = backends.postgres_bin("postgres") if server.name == "postgres" else server.argv[0]
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


def _of_this_checkout(port: int) -> bool:
    """Whether the process listening on the port was started with this checkout's data folder."""
    pid = listener_pid(port)
    try:
        return pid is not None and str(DATA) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def already_serving(server: Server) -> bool:
    """Whether what listens on the server's port is such a server we can use: a Redis that
    takes our password, a placement or scheduler by its process name. A Redis that does not
    is a SetupError: the components could not use it."""
    if server.name == "redis":
        answer = redis_answer(server.port, backends.secret("redis-password"))
        if answer is None or answer == "+PONG":
            return answer == "+PONG"
        raise SetupError(
            f"a Redis that is not ours answers on 127.0.0.1:{server.port} ({who_listens(server.port)}) and refuses "
            f"the password in .data/component-secrets.json ({answer}); stop it, or start it with that password"
        )
    if server.name in observability.NAMES:
        return port_open(server.port) and who_listens(server.port).endswith(f"({server.name})")
    if server.name in control_plane.NAMES:
        if not (port_open(server.port) and who_listens(server.port).endswith(f"({server.name})")):
            return False
        if _of_this_checkout(server.port):
            return True  # ours, its pidfile lost
        # Another checkout's: its certificates come from that checkout's sentry, and this one's
        # sidecars would fail every mTLS handshake with it (workflows and actors never start).
        raise SetupError(
            f"the {server.name} on 127.0.0.1:{server.port} ({who_listens(server.port)}) belongs to another "
            f"checkout and trusts that one's certificates, not this one's ({DATA}/sentry); stop it there "
            "(make down in that checkout) and try again"
        )
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
        if server.optional:
            try:
                _start_one(server, profile, started)
            except SetupError as exc:
                print(f"infra: {server.name} skipped: {exc}; the stack runs without it")
        else:
            _start_one(server, profile, started)
    if observability.enabled():
        observability.infra_targets([s for s in servers(profile) if s.exporter and port_open(s.port)])
        observability.live_stacks()  # drops what killed stacks left behind


def _start_one(server: Server, profile: str | None, started: list[str]) -> None:
    if read_pid(server.pidfile) and _stamp_of(server) != server.fingerprint:
        print(f"infra: {server.name} runs with other flags; starting it again")
        stop(server.pidfile)
    if read_pid(server.pidfile):
        print(f"infra: {server.name} already running on 127.0.0.1:{server.port}")
        if server.ready:
            server.ready()
        return
    if already_serving(server):
        # Another checkout's (or a user's own): used as it is, and left running at `down`.
        print(f"infra: using the {server.name} already answering on 127.0.0.1:{server.port} (not ours: left running)")
        return
    if server.package:
        ensure_package(server)
        # Made again: a program just installed may live elsewhere (PostgreSQL's bin folder).
        server = next(s for s in servers(profile) if s.name == server.name)
    _start(server)
    started.append(server.name)


def _start(server: Server) -> None:
    """Starts one server and waits until it listens (and is ready); a SetupError with its log
    when it does not."""
    require_free(server.port, server.name)
    for data in ("redis", "scheduler", "sentry"):
        (DATA / data).mkdir(parents=True, exist_ok=True)
    for path, text in server.files.items():
        credentials.write_private(path, text)
    if server.prepare:
        server.prepare()
    start(server.argv, server.log, server.pidfile, env=os.environ | server.env if server.env else None)
    server.stamp.write_text(json.dumps(server.fingerprint))
    # Until it listens, or exits (then its log says why).
    settled = wait_until(lambda: port_open(server.port) or not read_pid(server.pidfile), server.timeout_s)
    if not settled or not read_pid(server.pidfile):
        stop(server.pidfile)
        raise SetupError(
            f"{server.name} did not start listening on 127.0.0.1:{server.port}; "
            f"its log ({server.log}):\n{tail(server.log)}"
        )
    if server.ready:
        server.ready()
    print(f"infra: started {server.name} on 127.0.0.1:{server.port}")


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
        users = (server.users() if server.users else clients(server.port)) if read_pid(server.pidfile) else 0
        if users:
            # Another stack (a concurrent test session, a `make up`) still talks to it: stopping
            # it would break that one. Left running; `make down` stops it once they are gone.
            what = "running stack(s) to scrape" if server.users else "client connection(s)"
            print(f"infra: {server.name} still has {users} {what}; left running")
            continue
        if stop(server.pidfile):
            print(f"infra: stopped {server.name}")
    prometheus = observability.prometheus()
    if read_pid(prometheus.pidfile):  # still in use: it keeps scraping what still runs
        observability.infra_targets([s for s in servers(every_profile=True) if s.exporter and port_open(s.port)])
    else:
        observability.remove_targets(observability.INFRA_TARGETS.removesuffix(".json"))


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
    """Installs the server packages of every profile that are missing, and Prometheus unless
    observability is off. Setup runs it before any test: the unit tests read the servers'
    programs too, and a fresh machine has none. Without root a missing Prometheus is named, not
    an error: the stack runs without it."""
    for server in servers(every_profile=True):
        if not server.optional:
            ensure_package(server)
        elif server.package and observability.enabled():
            try:
                ensure_package(server)
            except SetupError as exc:
                print(f"infra: {server.name} skipped: {exc}; the stack runs without it")

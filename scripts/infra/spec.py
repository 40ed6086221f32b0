"""What infra knows of one server: the command that starts it, the files it reads, and where
its pidfile, log and start stamp live. The control plane, the profiles' servers and the
observability servers are each described this way (control_plane.py, backends.py,
observability.py); lifecycle.py starts and stops them."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scripts.proc import DATA

PIDS = DATA / "infra"
LOGS = DATA / "logs"
LOCALHOST = "127.0.0.1"  # every server listens here only


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
    # Optional (Prometheus, Jaeger): one that cannot be installed or started is skipped with a
    # message; the stack runs without it.
    optional: bool = False
    # How many still use it (`down` leaves it running while any does); by default the
    # connections to its port.
    users: Callable[[], int] | None = None
    exporter: int | None = None  # the port of its Prometheus metrics, if it serves them

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


def port_of(address: str) -> int:
    """The port of a `host:port` address."""
    return int(address.rsplit(":", 1)[1])

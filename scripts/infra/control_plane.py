"""Dapr's control plane as local processes: sentry (the certificate authority behind mTLS, which
access control needs), placement (actors) and scheduler (workflows, jobs). Their programs come
from scripts/install-dapr (.data/dapr.env); placement's and scheduler's ports from dapr.yaml,
the file the sidecars read, so the two can never disagree."""

from pathlib import Path

import yaml

from scripts.infra.spec import LOCALHOST, PIDS, Server, port_of
from scripts.proc import DATA, ROOT, listener_pid, port_open, read_env_file, read_pid

# The dapr CLI points every daprd at sentry on localhost:50001 when the Configuration asks for
# mTLS; it has no setting for another address.
SENTRY_PORT = 50001
OUR_CREDENTIALS = DATA / "sentry"  # sentry writes its root (ca.crt) and issuer here at first start
TRUST_DOMAIN = "localhost"
NAMES = ("sentry", "placement", "scheduler")
METRICS_OFFSET = 20  # each serves Prometheus metrics on its port + 20


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


def listening(port: int) -> list[str]:
    """The flags all three take for where they listen: the port, and next to it the health
    (+10) and metrics (+20) ports, so that nothing lands on the usual defaults (8080, 9090)
    other tools use; all on 127.0.0.1."""
    return [
        "--port",
        str(port),
        "--listen-address",
        LOCALHOST,
        "--healthz-port",
        str(port + 10),
        "--healthz-listen-address",
        LOCALHOST,
        "--metrics-port",
        str(port + METRICS_OFFSET),
        "--metrics-listen-address",
        LOCALHOST,
    ]


def mtls() -> list[str]:
    """Placement and scheduler speak mTLS, with certificates from sentry (self-signed root in
    .data/sentry, or the root of the sentry already answering)."""
    return [
        "--tls-enabled",
        "--trust-anchors-file",
        str(trust_anchors()),
        "--trust-domain",
        TRUST_DOMAIN,
        "--sentry-address",
        f"{LOCALHOST}:{SENTRY_PORT}",
    ]


def control_plane() -> list[Server]:
    """Sentry, placement and scheduler, in the order they start. Their other side ports (raft,
    etcd) sit next to the main port too."""
    common = yaml.safe_load((ROOT / "dapr.yaml").read_text())["common"]
    placement, scheduler = port_of(common["placementHostAddress"]), port_of(common["schedulerHostAddress"])
    programs = read_env_file(DATA / "dapr.env")
    tls = mtls()
    sentry = [
        "--config",
        str(ROOT / "dapr" / "sentry.yaml"),
        "--issuer-credentials",
        str(OUR_CREDENTIALS),
        "--trust-domain",
        TRUST_DOMAIN,
    ]
    return [
        Server(
            "sentry",
            SENTRY_PORT,
            [programs["DAPRML_SENTRY"], *sentry, *listening(SENTRY_PORT)],
            exporter=SENTRY_PORT + METRICS_OFFSET,
        ),
        Server(
            "placement",
            placement,
            [
                programs["DAPRML_PLACEMENT"],
                *listening(placement),
                "--initial-cluster",
                f"dapr-placement-0={LOCALHOST}:{placement + 2}",
                *tls,
            ],
            exporter=placement + METRICS_OFFSET,
        ),
        Server(
            "scheduler",
            scheduler,
            [
                programs["DAPRML_SCHEDULER"],
                *listening(scheduler),
                "--etcd-data-dir",
                str(DATA / "scheduler"),
                "--etcd-client-port",
                str(scheduler + 2),
                "--etcd-client-listen-address",
                LOCALHOST,
                "--etcd-initial-cluster",
                f"dapr-scheduler-server-0=http://{LOCALHOST}:{scheduler + 3}",
                "--override-broadcast-host-port",
                f"{LOCALHOST}:{scheduler}",
                *tls,
            ],
            exporter=scheduler + METRICS_OFFSET,
        ),
    ]

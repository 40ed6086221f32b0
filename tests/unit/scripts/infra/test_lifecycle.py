"""Starting infra next to servers that are already there: one of the same kind is used, not
fought; a Redis that is not ours and refuses our password is a clear error; a server still in
use is left running; a missing program is installed or named with its Debian package."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import profiles
from scripts.infra import backends, lifecycle
from scripts.infra.spec import Server
from scripts.proc import DATA, SetupError, free_port, port_open, wait_until


def test_a_server_of_the_same_kind_already_listening_is_used_not_fought(tmp_path):
    # A process named "placement" (python under that name) listening where placement would.
    fake_name = tmp_path / "placement"
    shutil.copy(sys.executable, fake_name)
    port = free_port()
    listen = f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(60)"
    # Started with this checkout's data folder (its trust anchors): ours, its pidfile lost.
    ours = subprocess.Popen([str(fake_name), "-c", listen, "--trust-anchors-file", f"{DATA}/sentry/ca.crt"])
    try:
        assert wait_until(lambda: port_open(port), 10)
        assert lifecycle.already_serving(Server("placement", port, []))
        assert not lifecycle.already_serving(Server("scheduler", port, []))
    finally:
        ours.kill()
        ours.wait()
    # Another checkout's: its certificates are not this one's, so not usable: said, not used.
    theirs = subprocess.Popen([str(fake_name), "-c", listen, "--trust-anchors-file", "/elsewhere/.data/sentry/ca.crt"])
    try:
        assert wait_until(lambda: port_open(port), 10)
        with pytest.raises(SetupError, match="belongs to another checkout"):
            lifecycle.already_serving(Server("placement", port, []))
    finally:
        theirs.kill()
        theirs.wait()


def test_a_redis_without_our_password_on_our_port_is_a_clear_error(tmp_path):
    port = free_port()
    other = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: lifecycle.redis_answer(port, "x") is not None, 10)
        with pytest.raises(SetupError, match="refuses the password"):
            lifecycle.already_serving(Server("redis", port, []))
    finally:
        other.kill()
        other.wait()
    with socket.socket() as s:  # nothing listens now: not a Redis
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert lifecycle.redis_answer(port, "x") is None


def test_a_server_still_in_use_counts_its_clients():
    port = free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert lifecycle.clients(port) == 0
        with socket.create_connection(("127.0.0.1", port)):
            assert wait_until(lambda: lifecycle.clients(port) == 1, 5)


@pytest.mark.parametrize("name", ["postgres", "rabbitmq", "nats"])
def test_a_missing_server_program_is_installed_or_named_with_its_package(name, monkeypatch):
    server = next(s for p in profiles.runnable() for s in backends.profile_servers(p) if s.name == name)
    monkeypatch.setattr(backends, "postgres_bin", lambda program: f"/nonexistent/{program}")
    monkeypatch.setattr(lifecycle.shutil, "which", lambda program: None)
    monkeypatch.setattr(lifecycle.os, "geteuid", lambda: 1000)
    missing = Server(server.name, server.port, ["/nonexistent/" + Path(server.argv[-1]).name], package=server.package)
    with pytest.raises(SetupError, match=f"sudo apt-get install -y {server.package}"):
        lifecycle.ensure_package(missing)

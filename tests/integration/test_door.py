"""The gateway's server bounds what a client can make it hold: a huge header is refused as soon
as the limit is read and does not slow anyone else; a head or body that trickles in is cut
with 408; past the connection cap a new connection gets 503. Raw sockets, so that nothing
between the test and the server fixes up what is sent.

The huge header goes to the session stack's gateway as `make up` runs it. The timeouts and the
cap are tried on a second gateway process with small limits, using the session gateway's
sidecar (its API token), so that real keys and a real forward to ingestion are involved."""

import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import yaml

from scripts.proc import ROOT, free_port, port_open, wait_until

pytestmark = pytest.mark.integration


def _read_reply(sock: socket.socket, timeout_s: float = 15) -> bytes:
    """What the server sent until it closed the connection (or the timeout, or a reset)."""
    sock.settimeout(timeout_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


@pytest.fixture(scope="module")
def small_door(stack, tmp_path_factory):
    """A gateway process with small limits, on the session gateway's sidecar."""
    port, gateway = free_port(), stack.app("gateway")
    common_env = yaml.safe_load(stack.run_file.read_text())["common"]["env"]
    env = (
        os.environ
        | {k: str(v) for k, v in common_env.items()}
        | stack.credentials.env()
        | {
            "APP_ID": gateway.app_id,
            "DAPRML_PORT": str(port),
            "DAPR_HTTP_PORT": str(gateway.http_port),
            "DAPR_GRPC_PORT": str(gateway.grpc_port),
            "DAPRML_HEARTBEAT_S": "0",
            "DAPRML_HEADER_TIMEOUT_S": "1",
            "DAPRML_BODY_IDLE_TIMEOUT_S": "1",
            "DAPRML_MAX_CONNECTIONS": "20",
        }
    )
    log = tmp_path_factory.mktemp("door") / "gateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        assert wait_until(lambda: port_open(port), 30), log.read_text()
        yield port
    finally:
        process.terminate()
        process.wait(10)


def test_a_64_mib_header_is_refused_at_once_and_does_not_slow_other_clients(stack, gateway):
    host, port = "127.0.0.1", stack.app("gateway").app_port
    latencies: list[float] = []
    done = threading.Event()

    def valid_calls() -> None:
        while not done.is_set():
            t0 = time.monotonic()
            assert gateway.get("/api/models").status_code == 200
            latencies.append(time.monotonic() - t0)
            time.sleep(0.02)

    caller = threading.Thread(target=valid_calls)
    caller.start()
    try:
        time.sleep(0.5)
        with socket.create_connection((host, port)) as sock:
            t0 = time.monotonic()
            sock.sendall(b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Big: ")
            sent = 0
            try:
                chunk = b"a" * (1024 * 1024)
                while sent < 64 * 1024 * 1024:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server closed the connection before it was all sent: what we want
            reply = _read_reply(sock)
            refused_s = time.monotonic() - t0
        time.sleep(0.5)
    finally:
        done.set()
        caller.join(10)
    print(
        f"\n64 MiB header: refused after {sent / 2**20:.0f} MiB sent, {refused_s * 1000:.0f} ms; "
        f"valid calls meanwhile: {len(latencies)}, slowest {max(latencies) * 1000:.0f} ms, "
        f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms"
    )
    assert sent < 64 * 1024 * 1024, "the server read the whole 64 MiB header"
    assert reply == b"" or reply.startswith(b"HTTP/1.1 431"), reply[:200]
    assert latencies and gateway.get("/api/models").status_code == 200


def test_a_header_longer_than_the_per_header_limit_gets_431(stack):
    reply = httpx.get(f"{stack.gateway_url}/api/models", headers={"x-long": "a" * 9000})
    assert reply.status_code == 431 and "9006 bytes long" in reply.text


def test_a_request_head_that_trickles_in_is_cut_with_408(small_door):
    with socket.create_connection(("127.0.0.1", small_door)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        reply = b""
        for i in range(40):  # a header line every 0.2 s: never a whole head within 1 s
            try:
                sock.sendall(f"X-Slow-{i}: y\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.2)
        reply = _read_reply(sock, 5)
    print(f"\ntrickled head cut after {time.monotonic() - t0:.1f}s: {reply[:40]!r}")
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]


def test_a_request_body_that_stops_arriving_is_cut_with_408_and_nothing_is_stored(stack, small_door):
    key = stack.admin_key
    with socket.create_connection(("127.0.0.1", small_door)) as sock:
        sock.sendall(
            b"POST /api/datasets/door-stalled/versions?target=y HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n".encode()
            + b"x,y\n1,2\n"
        )
        reply = _read_reply(sock, 10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    with stack.gateway() as client:
        assert client.get("/api/datasets/door-stalled").status_code == 404


def test_past_the_connection_cap_a_new_connection_gets_503_and_the_rest_are_served(small_door):
    held = [socket.create_connection(("127.0.0.1", small_door)) for _ in range(20)]
    try:
        with socket.create_connection(("127.0.0.1", small_door)) as extra:
            reply = _read_reply(extra, 5)
        assert reply.startswith(b"HTTP/1.1 503"), reply[:200]
    finally:
        for sock in held:
            sock.close()
    # The held ones are gone: served again.
    assert wait_until(lambda: httpx.get(f"http://127.0.0.1:{small_door}/healthz").status_code == 200, 10)


def test_an_idle_slow_client_is_closed_and_does_not_hold_the_server(small_door):
    """Connections that send nothing: each closed by the head timeout, none left open."""
    idle = [socket.create_connection(("127.0.0.1", small_door)) for _ in range(15)]
    try:
        replies = [_read_reply(sock, 5) for sock in idle]
    finally:
        for sock in idle:
            sock.close()
    assert all(r.startswith(b"HTTP/1.1 408") for r in replies), [r[:40] for r in replies]

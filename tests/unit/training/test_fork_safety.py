"""The training service turns gRPC's fork handlers off before gRPC loads (fork_safety.py): with
them on, every fork of a process whose threads call into gRPC runs them, and they crashed fit
workers before their exec. Checked in a fresh interpreter as the service starts workers:
uvloop's subprocess (fork, then exec) beside threads busy with gRPC calls."""

import subprocess
import sys

SCRIPT = """
import sys, threading
if sys.argv[1] == "safe":
    from services.training import fork_safety  # noqa: F401
import asyncio, grpc, uvloop
from concurrent import futures

server = grpc.server(futures.ThreadPoolExecutor(4))
echo = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {"Echo": echo}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
done = threading.Event()

def busy():
    call = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary("/t.T/Echo")
    while not done.is_set():
        call(b"x", timeout=5)

for _ in range(4):
    threading.Thread(target=busy, daemon=True).start()

async def spawn():
    for _ in range(30):
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        await child.wait()

uvloop.run(spawn())
done.set()
server.stop(None)
"""


def forks_seen_by_grpc(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr.count("fork_posix.cc")


def test_grpc_runs_no_fork_handler_in_the_training_service():
    assert forks_seen_by_grpc("safe") == 0
    assert forks_seen_by_grpc("default") > 0  # the test can tell: without it, the handlers run

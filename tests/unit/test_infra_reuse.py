import shutil
import subprocess
import sys

from scripts import infra
from scripts.proc import free_port, port_open, wait_until


def test_a_server_of_the_same_kind_already_listening_is_used_not_fought(tmp_path):
    # A process named "placement" (python under that name) listening where placement would.
    fake_name = tmp_path / "placement"
    shutil.copy(sys.executable, fake_name)
    port = free_port()
    listen = f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(60)"
    other = subprocess.Popen([str(fake_name), "-c", listen])
    try:
        assert wait_until(lambda: port_open(port), 10)
        assert infra._already_serving(infra.Server("placement", port, []))
        assert not infra._already_serving(infra.Server("scheduler", port, []))
    finally:
        other.kill()
        other.wait()

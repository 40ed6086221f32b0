"""Where the gateway is and which key goes with each request: flags, then the environment,
then the defaults (http://127.0.0.1:8000 and the local stack's .data/admin-key)."""

import pytest

from tests.unit.cli.conftest import reply

STATUS = {"ok": True, "services": []}


def sent_to(fake) -> tuple[str, str | None]:
    (request,) = fake.sent
    return f"{request.url.scheme}://{request.url.netloc.decode()}", request.headers.get("authorization")


def test_by_default_the_local_gateway_and_no_key(fake, cli):
    fake.on("GET", "/api/status", reply(200, STATUS))
    assert cli("status").exit_code == 0
    assert sent_to(fake) == ("http://127.0.0.1:8000", None)


def test_the_local_stacks_key_file_in_the_current_directory(fake, cli, tmp_path):
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "admin-key").write_text("dev-key-123\n")
    fake.on("GET", "/api/status", reply(200, STATUS))
    assert cli("status").exit_code == 0
    assert sent_to(fake) == ("http://127.0.0.1:8000", "Bearer dev-key-123")


def test_the_environment_wins_over_the_defaults(fake, cli, tmp_path):
    (tmp_path / ".data").mkdir()
    (tmp_path / ".data" / "admin-key").write_text("dev-key-123\n")
    fake.on("GET", "/api/status", reply(200, STATUS))
    env = {"DAPRML_URL": "http://gateway.example:9000", "DAPRML_API_KEY": "env-key"}
    assert cli("status", env=env).exit_code == 0
    assert sent_to(fake) == ("http://gateway.example:9000", "Bearer env-key")


@pytest.mark.parametrize("env", [None, {"DAPRML_URL": "http://other:1", "DAPRML_API_KEY": "env-key"}])
def test_flags_win_over_everything(fake, cli, env):
    fake.on("GET", "/api/status", reply(200, STATUS))
    assert cli("--url", "http://flag:7/", "--key", "flag-key", "status", env=env).exit_code == 0
    assert sent_to(fake) == ("http://flag:7", "Bearer flag-key")

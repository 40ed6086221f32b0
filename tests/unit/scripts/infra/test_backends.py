"""The servers infra starts for each runnable profile: found from its components, on their
ports, with their passwords in files of .data/ rather than on the command line."""

import pytest

from scripts import credentials
from scripts.infra import backends, lifecycle
from scripts.infra.spec import Server
from scripts.proc import DATA


@pytest.mark.parametrize(
    ("profile", "servers"),
    [("local", ["redis"]), ("postgres-rabbitmq", ["postgres", "epmd", "rabbitmq"]), ("nats-sqlite", ["nats"])],
)
def test_infra_starts_what_the_profiles_components_connect_to_on_their_ports(profile, servers, tmp_path, monkeypatch):
    found = backends.profile_servers(profile)
    assert sorted(s.name for s in found) == sorted(servers)
    if "epmd" in servers:  # RabbitMQ finds the port mapper we started, and stops before it
        assert [s.name for s in found].index("epmd") < [s.name for s in found].index("rabbitmq")
    for server in found:
        assert all(str(f).startswith(str(DATA)) for f in server.files)
        assert "127.0.0.1" in " ".join(server.argv + list(server.files.values()) + list(server.env.values()))
    assert [s.name for s in lifecycle.servers(profile)][:3] == ["sentry", "placement", "scheduler"]


def test_passwords_live_in_config_files_not_on_the_command_line():
    for server in lifecycle.servers(every_profile=True):
        for secret in credentials.component_secrets().values():
            assert secret not in " ".join(server.argv), server.name


def test_a_redis_of_ours_started_without_the_password_is_started_again():
    redis = next(s for s in backends.profile_servers("local") if s.name == "redis")
    before = ["redis-server", "--port", str(redis.port), "--bind", "127.0.0.1"]  # an older checkout's stamp
    assert redis.fingerprint != before and redis.fingerprint[-1].startswith("files:")
    changed = Server(redis.name, redis.port, redis.argv, files={k: v + "#" for k, v in redis.files.items()})
    assert changed.fingerprint != redis.fingerprint  # a new password restarts it too
    (conf,) = redis.files.values()
    assert f"requirepass {credentials.component_secrets()['redis-password']}" in conf

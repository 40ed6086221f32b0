"""Every infra unit test keeps its pidfiles, stamps and logs in a folder of its own.

A fake Server named like a real one ("redis", "jaeger") has the real one's pidfile under
.data/infra; starting it there once read the running server's pid, found other flags, and
stopped the Redis and Jaeger of a test session running at the same time."""

import pytest

from scripts.infra import control_plane, observability, spec


@pytest.fixture(autouse=True)
def own_pidfiles(tmp_path, monkeypatch):
    pids, logs = tmp_path / "infra", tmp_path / "logs"
    pids.mkdir()
    logs.mkdir()
    for module in (spec, observability, control_plane):
        monkeypatch.setattr(module, "PIDS", pids)
    monkeypatch.setattr(spec, "LOGS", logs)

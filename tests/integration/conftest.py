"""Real daprd 1.18.2 and Redis, started through the project's own scripts.

One stack per test session: the project's dapr.yaml with free ports and app ids suffixed by
a run id (so a developer's running stack and earlier runs never interfere), started by the
real dapr CLI. Everything a fixture starts, it stops, on failure too.
"""

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scripts import infra
from scripts.proc import SetupError, free_port, wait_until
from scripts.runfile import copy_component_folders, free_app_ports, with_ports
from scripts.stack import Stack
from services.common.settings import ServiceSettings


def pytest_configure(config: pytest.Config) -> None:
    """A run stopped with SIGTERM (`timeout`, a CI cancel) stops what it started: Python's
    default for SIGTERM ends the process at once, so no fixture would stop its stack and its
    sidecars and apps would run on, detached. As KeyboardInterrupt, pytest tears everything down."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}: stopping what the tests started")


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def infrastructure():
    try:
        started = infra.up()
    except SetupError as exc:
        pytest.fail(f"local infrastructure did not start: {exc}", pytrace=False)
    yield
    infra.down(started)


@pytest.fixture(scope="session")
def stack(infrastructure, run_id, tmp_path_factory):
    stack = Stack.isolated(tmp_path_factory.mktemp("stack"), run_id)
    try:
        stack.start()
    except SetupError as exc:
        pytest.fail(f"the stack did not become ready:\n{exc}", pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def gateway(stack):
    """A client of the session stack's gateway, sending its development admin key."""
    with stack.gateway() as client:
        yield client


def sidecar_settings(stack: Stack, service: str) -> ServiceSettings:
    """Settings that point our own adapters at one service's real sidecar (with its API token)."""
    app = stack.app(service)
    return ServiceSettings(
        app_id=app.app_id,
        dapr_http_port=app.http_port,
        dapr_grpc_port=app.grpc_port,
        dapr_api_token=stack.credentials.dapr_token,
    )


def poll(check, timeout_s: float = 20):
    """The check's first truthy answer within the timeout, else None."""
    found = []
    wait_until(lambda: bool(found.append(check()) or found[-1]), timeout_s, interval_s=0.2)
    return found[-1] if found else None


def captured_predictions(client, name: str, page: int = 1000, max_pages: int = 50) -> list[dict]:
    """Every captured prediction of the model, read through the gateway page after page (the
    monitor drops copies of a prediction id on read: a list with an id twice is a bug)."""
    rows: list[dict] = []
    query: dict = {"limit": page}
    for _ in range(max_pages):
        reply = client.get(f"/api/models/{name}/predictions", params=query)
        assert reply.status_code == 200, reply.text
        found = reply.json()
        rows += found["predictions"]
        if found["next_since"] is None:
            return rows
        query = {"limit": page, "since": found["next_since"], "after": found["next_after"]}
    raise AssertionError(f"{name}: more than {max_pages} pages of {page} captured predictions")


@pytest.fixture
def one_app_stack(stack: Stack, tmp_path):
    """Makes stacks from a run file like the session stack's, cut down to one app running a
    given command; stops each at the end of the test, whatever happened. The app may load the
    components that the service `like` may (by default the one its command runs)."""
    made: list[Stack] = []

    def make(command: list[str], like: str | None = None) -> Stack:
        made.append(_one_app(stack, tmp_path / str(len(made)), command, like))
        return made[-1]

    yield make
    for solo in made:
        solo.stop()


def _one_app(stack: Stack, workdir, command: list[str], like: str | None) -> Stack:
    spec = yaml.safe_load(stack.run_file.read_text())
    app = spec["apps"][0]
    app.update(appID=f"solo-{free_port()}", appDirPath=str(workdir), command=command)
    with_ports(app, free_app_ports())  # the app's and its daprd's, and its own metrics port
    like = like or next((c.removeprefix("services.") for c in command if c.startswith("services.")), None)
    twin = stack.app(like).app_id if like else None
    spec["common"]["resourcesPaths"] = copy_component_folders(
        [Path(p) for p in spec["common"]["resourcesPaths"]],
        workdir,
        lambda app_id: [app_id, app["appID"]] if app_id == twin else [app_id],
    )
    spec["apps"] = [app]
    run_file = workdir / "dapr.yaml"
    run_file.write_text(yaml.safe_dump(spec))
    return Stack(run_file, workdir)


@contextlib.contextmanager
def launched_with(**env: str) -> Iterator[None]:
    """Settings for the stacks started inside: the launched apps inherit the test's environment
    (DAPRML_ROLLOUT_POLL_S="1", say); it is as it was after."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

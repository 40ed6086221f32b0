"""The stack in containers, for real (docker-compose.yml, the images of deploy/): built on this
machine, started under a project name of its own with the gateway published on a free port of
127.0.0.1, and driven only through that port (and `docker exec` into its own containers):

- a dataset uploaded through the gateway becomes a champion that predicts through the gateway;
- a call between apps the access rules do not allow is refused by the callee's sidecar (mTLS
  names the caller across containers), one they allow goes through;
- the components load with Redis's password from its secret, which no app may read;
- under a steady stream of predictions, an inference app container and an inference sidecar
  container killed with SIGKILL come back by their restart policy; the failed requests are
  counted and printed;
- no credential (the admin key, the API tokens, Redis's password) is in `docker compose logs`;
- `down` leaves no container, network or volume of the project, and the engine is stopped
  again when this test started it.

Needs root where no engine runs (it installs docker.io and the compose plugin and starts
dockerd: scripts/containers), else a running engine. Prints the build time (cold when no image
existed), the image sizes and how long the stack took to be ready.
"""

import json
import os
import time
import uuid

import pytest

from scripts.containers import engine, images
from scripts.containers.stack import ComposeStack
from scripts.proc import SetupError, free_port
from tests.integration.conftest import poll
from tests.integration.load import FixedRate
from tests.integration.test_hot_swap import ROWS
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 and not engine.answers(),
        reason="the compose tier needs root (to install docker.io and the compose plugin and start dockerd) "
        "or a running Docker engine with the compose v2 plugin",
    ),
]
KILL_BACK_S = 60  # a killed container restarted and healthy again within this


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    try:
        found = engine.ensure()
    except SetupError as exc:
        pytest.fail(f"no container engine: {exc}", pytrace=False)
    stack = ComposeStack(tmp_path_factory.mktemp("compose"), f"daprml-test-{uuid.uuid4().hex[:8]}", free_port())
    try:
        cold = images.missing() == [image.name for image in images.IMAGES]
        t0 = time.monotonic()
        images.build_all()
        sizes = ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in images.sizes().items())
        print(f"\ncompose: images built in {time.monotonic() - t0:.0f}s ({'cold' if cold else 'warm'}): {sizes}")
        up_s = stack.up()
        print(f"compose: {len(stack.containers())} containers ready in {up_s:.1f}s (project {stack.project})")
        yield stack
    except SetupError as exc:
        pytest.fail(f"the compose stack did not come up:\n{exc}", pytrace=False)
    finally:
        stack.down()
        if found.started:
            engine.stop_if_ours()
            print("compose: stopped the engine this test started")


@pytest.fixture(scope="module")
def champion(compose):
    """A dataset uploaded through the gateway, trained and promoted: its model's name."""
    with compose.gateway() as gateway:
        name = unique("compose")
        commit(gateway, name, iris_csv())
        (job,) = finished_job(gateway, name, timeout_s=240)
        assert job["status"] == "COMPLETED", job
    return name


def predict(client, name: str):
    return client.post(f"/api/models/{name}/predict", json={"records": ROWS})


def test_an_uploaded_dataset_becomes_a_champion_that_predicts_through_the_gateway(compose, champion):
    with compose.gateway() as gateway:
        model = gateway.get(f"/api/models/{champion}").json()
        assert model["aliases"] == {"champion": 1}, model

        def answered():
            reply = predict(gateway, champion)
            return reply.json() if reply.status_code == 200 else None

        answer = poll(answered, 60)
        assert answer and answer["version"] == 1 and answer["predictions"] == ["setosa"], answer


def test_the_callees_sidecar_allows_only_the_callers_the_access_rules_name(compose):
    """From inside the notifier's container, through its own sidecar (another container): the
    notifier may call inference (dapr/access.yaml), not the registry."""

    def status_of(app_id: str) -> int:
        script = (
            f"fetch('http://notifier-daprd:' + process.env.DAPR_HTTP_PORT + '/v1.0/invoke/{app_id}/method/healthz', "
            "{headers: {'dapr-api-token': process.env.DAPR_API_TOKEN}}).then(r => console.log(r.status))"
        )
        done = compose.compose("exec", "-T", "notifier", "node", "-e", script, timeout_s=60)
        return int(done.stdout.strip())

    assert status_of("inference") == 200
    assert status_of("registry") == 403


def test_the_components_load_with_redis_password_which_the_apps_may_not_read(compose):
    status, body = compose.sidecar_get("training", "/v1.0/metadata")
    assert status == 200, body
    loaded = {c["name"]: c["type"] for c in json.loads(body)["components"]}
    assert loaded["statestore"] == "state.redis" and loaded["pubsub"] == "pubsub.redis"
    assert loaded["componentsecrets"] == "secretstores.local.file"
    status, body = compose.sidecar_get("training", "/v1.0/secrets/componentsecrets/redis-password")
    assert status == 403 and json.loads(body)["errorCode"] == "ERR_PERMISSION_DENIED", body


@pytest.mark.parametrize("service", ["inference", "inference-2-daprd"])
def test_a_killed_container_comes_back_under_a_stream_of_predictions(compose, champion, service):
    load = FixedRate(lambda c: predict(c, champion), compose.gateway, per_second=20, duration_s=40)
    with load:
        time.sleep(3)
        killed_at = time.monotonic()
        _, started = compose.kill(service)
        back = poll(lambda: compose.back(service, started), KILL_BACK_S)
        back_s = time.monotonic() - killed_at
        assert back, f"{service} is not running and healthy again {KILL_BACK_S}s after the kill"
    print(f"\ncompose: {service} killed, back and healthy in {back_s:.1f}s; " + load.report("predictions"))
    assert load.answers, "no request was sent"
    # Every request after the restart is answered again (the other replica took the load meanwhile).
    late = [a for a in load.answers if a.sent > killed_at + back_s + 5]
    assert late and all(a.status == 200 for a in late), load.report("after the restart")


def test_no_credential_appears_in_the_logs(compose):
    logs = compose.logs()
    assert len(logs) > 10_000, "the logs are not what compose logs prints"
    leaked = [f"{value[:4]}... ({len(value)} chars)" for value in compose.secret_values() if value in logs]
    assert not leaked, f"credentials in docker compose logs: {leaked}"


def test_down_leaves_nothing_of_the_project(compose):
    t0 = time.monotonic()
    compose.down()
    print(f"\ncompose: down in {time.monotonic() - t0:.1f}s")
    assert compose.leftovers() == []

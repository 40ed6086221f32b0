"""Each Dapr building block daprml uses, through real sidecars."""

import asyncio
import os
import signal
import subprocess
import time
import uuid

import httpx
import pytest

from scripts.proc import DATA, listener_pid, read_env_file
from services.common import events
from services.common.dapr_adapters import DaprBlobStore, DaprPublisher, DaprSecretStore, DaprStateStore, Sidecar
from services.common.events import EventType, RoundtripPing, Topic
from services.common.ports import ConcurrencyConflict, NotFound, SidecarUnavailable
from tests.integration.conftest import poll, sidecar_settings

pytestmark = pytest.mark.integration


def test_gateway_reaches_every_service_through_service_invocation(gateway, stack):
    body = gateway.get("/api/status").json()
    assert body["ok"] is True, body
    assert {s["app_id"] for s in body["services"]} == {a.app_id for a in stack.apps}
    assert {s["runtime_version"] for s in body["services"]} == {installed_daprd_version()}


def installed_daprd_version() -> str:
    """1.18.2 when built here; a `dapr init` install of another 1.18.x is used as it is."""
    daprd = read_env_file(DATA / "dapr.env")["DAPRML_DAPRD"]
    version = subprocess.run([daprd, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("1.18."), version
    return version


def test_every_daprd_log_shows_the_runtime_version(stack):
    logs = list((stack.workdir / ".dapr" / "logs").glob("*_daprd_*.log"))
    assert len(logs) == len(stack.apps)
    for log in logs:
        assert f"Starting Dapr Runtime -- version {installed_daprd_version()}" in log.read_text(), log


def test_roundtrip_through_the_gateway_passes_every_step(gateway):
    report = gateway.post("/api/roundtrip").json()
    assert report["ok"] is True, report
    assert [s["name"] for s in report["steps"]] == [
        "invocation",
        "secret",
        "blob write",
        "state etag",
        "publish",
        "subscription",
        "blob read",
    ]


def test_cloudevent_published_by_ingestion_reaches_the_training_subscription(stack):
    run = f"pubsub-{uuid.uuid4().hex[:8]}"
    ingestion, training = (f"http://127.0.0.1:{stack.app(s).app_port}" for s in ("ingestion", "training"))
    steps = httpx.post(f"{ingestion}/internal/roundtrip/{run}", timeout=30, headers=stack.app_headers()).json()["steps"]
    assert all(s["ok"] for s in steps), steps

    def received():
        reply = httpx.get(f"{training}/internal/roundtrip/{run}", timeout=5, headers=stack.app_headers())
        return reply.json() if reply.status_code == 200 else None

    record = poll(received)
    assert record is not None, "training never recorded the ping"
    assert record["event_source"] == f"/daprml/{stack.app('ingestion').app_id}"
    assert record["blob_ok"] is True


def test_an_invalid_event_is_dropped_and_the_subscriber_keeps_working(stack):
    topic = f"{stack.topic_prefix}{Topic.ROUNDTRIP}"
    sidecar = f"http://127.0.0.1:{stack.app('ingestion').http_port}/v1.0/publish/pubsub/{topic}"
    headers = {"content-type": events.CLOUDEVENTS_JSON}
    junk = b'{"specversion": "1.0", "id": "x", "source": "/test", "type": "io.daprml.roundtrip.ping.v1", "data": {}}'
    assert httpx.post(sidecar, content=junk, headers=headers | stack.sidecar_headers()).status_code == 204

    run = f"after-junk-{uuid.uuid4().hex[:8]}"
    good = events.encode(EventType.ROUNDTRIP_PING, "/test", RoundtripPing(run_id=run, blob_key="roundtrip/none.json"))
    assert httpx.post(sidecar, content=good, headers=headers | stack.sidecar_headers()).status_code == 204
    training = f"http://127.0.0.1:{stack.app('training').app_port}"
    record = poll(
        lambda: httpx.get(f"{training}/internal/roundtrip/{run}", headers=stack.app_headers()).status_code == 200
    )
    assert record, "the valid event after the invalid one was not processed"
    log = next((stack.workdir / ".dapr" / "logs").glob(f"{stack.app('training').app_id}_app_*.log"))
    # Deliveries run concurrently: the invalid one may be handled after the valid one.
    assert poll(lambda: "dropping an invalid io.daprml.roundtrip.ping.v1 event" in log.read_text()), (
        "training did not log dropping the invalid event"
    )


async def _state_scenario(settings):
    sidecar = Sidecar(settings)
    try:
        store = DaprStateStore(sidecar, settings.statestore)
        key = f"etag-{uuid.uuid4().hex}"
        await store.save(key, b'{"v": 1}')
        first = await store.get(key)
        await store.save(key, b'{"v": 2}', etag=first.etag)
        with pytest.raises(ConcurrencyConflict):
            await store.save(key, b'{"v": 3}', etag=first.etag)
        current = await store.get(key)
        assert current.value == b'{"v": 2}' and current.etag != first.etag
        with pytest.raises(ConcurrencyConflict):
            await store.delete(key, etag=first.etag)
        await store.delete(key, etag=current.etag)
        assert await store.get(key) is None
    finally:
        await sidecar.close()


def test_state_save_get_delete_with_etag_refuses_a_stale_etag(stack):
    asyncio.run(_state_scenario(sidecar_settings(stack, "ingestion")))


async def _secret_scenario(settings):
    sidecar = Sidecar(settings)
    try:
        store = DaprSecretStore(sidecar, settings.secretstore)
        assert (await store.get("gateway"))["admin-token"]
        with pytest.raises(NotFound):
            await store.get("no-such-secret")
    finally:
        await sidecar.close()


def test_secret_is_read_from_the_secret_store(stack):
    asyncio.run(_secret_scenario(sidecar_settings(stack, "gateway")))


async def _blob_scenario(writer_settings, reader_settings):
    writer, reader = Sidecar(writer_settings), Sidecar(reader_settings)
    try:
        key = f"tests/{uuid.uuid4().hex}.bin"
        data = bytes(range(256)) * 64
        await DaprBlobStore(writer, writer_settings.blobstore).put(key, data)
        assert await DaprBlobStore(reader, reader_settings.blobstore).get(key) == data
        # Bytes that read as base64 or as a quoted string must come back as they were sent.
        for tricky in (b"QUJD", b'"quoted"', b"", b"\x00\xff"):
            await DaprBlobStore(writer, writer_settings.blobstore).put(key, tricky)
            assert await DaprBlobStore(reader, reader_settings.blobstore).get(key) == tricky
        await DaprBlobStore(reader, reader_settings.blobstore).delete(key)
        with pytest.raises(NotFound):
            await DaprBlobStore(writer, writer_settings.blobstore).get(key)
    finally:
        await writer.close()
        await reader.close()


def test_blob_written_by_one_service_is_read_by_another(stack):
    asyncio.run(_blob_scenario(sidecar_settings(stack, "ingestion"), sidecar_settings(stack, "training")))


async def _many_conflicts_scenario(settings, conflicts: int):
    sidecar = Sidecar(settings)
    try:
        store = DaprStateStore(sidecar, settings.statestore)
        key = f"contended-{uuid.uuid4().hex}"
        await store.save(key, b"1")
        stale = (await store.get(key)).etag
        await store.save(key, b"2", etag=stale)
        for _ in range(conflicts):
            with pytest.raises(ConcurrencyConflict):
                await store.save(key, b"lost", etag=stale)
        # The store still answers at once: the refusals did not open a circuit breaker.
        current = await store.get(key)
        await store.save(key, b"3", etag=current.etag)
        assert (await store.get(key)).value == b"3"
    finally:
        await sidecar.close()


def test_a_run_of_refused_etags_does_not_cut_the_service_off_its_state_store(stack):
    # A breaker of the kind components get (consecutiveFailures > 5) would open on these.
    asyncio.run(_many_conflicts_scenario(sidecar_settings(stack, "ingestion"), 12))


async def _frozen_sidecar_scenario(settings, daprd: int) -> dict[str, float]:
    """Each kind of SDK call to a sidecar that stopped answering, and how long it took to fail."""
    sidecar = Sidecar(settings)
    store, blobs = DaprStateStore(sidecar, settings.statestore), DaprBlobStore(sidecar, settings.blobstore)
    # On a topic nobody hears: daprd reads what was sent once it runs again, and publishes it.
    publisher = DaprPublisher(sidecar, settings.pubsub, "deadline-test", topic_prefix="frozen-")
    ping = RoundtripPing(run_id="frozen", blob_key="roundtrip/frozen.json")
    calls = {
        "state get": lambda: store.get(f"frozen-{uuid.uuid4().hex}"),
        "publish": lambda: publisher.publish(EventType.ROUNDTRIP_PING, ping),
        "blob put": lambda: blobs.put(f"frozen-{uuid.uuid4().hex}", b"x"),
    }
    took: dict[str, float] = {}
    try:
        await store.get("warm-up")  # the client is made (and the sidecar found healthy) before it freezes
        os.kill(daprd, signal.SIGSTOP)
        for name, call in calls.items():
            t0 = time.monotonic()
            with pytest.raises(SidecarUnavailable):
                # Far above the deadlines: without them each of these waits forever.
                await asyncio.wait_for(call(), 20)
            took[name] = time.monotonic() - t0
    finally:
        os.kill(daprd, signal.SIGCONT)
        await sidecar.close()
    return took


def test_a_frozen_sidecar_fails_each_sdk_call_by_its_deadline_instead_of_hanging(stack):
    """SIGSTOP leaves daprd's sockets open and silent (as a sidecar container whose network went
    away does): state, pub/sub and bindings calls each end by the deadline set for its kind."""
    settings = sidecar_settings(stack, "ingestion").model_copy(update={"sdk_timeout_s": 1.0, "call_timeout_s": 2.0})
    daprd = listener_pid(stack.app("ingestion").http_port)
    took = asyncio.run(_frozen_sidecar_scenario(settings, daprd))
    print(f"\nfailed after: {', '.join(f'{name} {s:.2f}s' for name, s in took.items())}")
    assert 1.0 <= took["state get"] < 5 and 1.0 <= took["publish"] < 5
    assert 2.0 <= took["blob put"] < 6  # a binding carries whole blobs: it gets the longer deadline
    # The sidecar answers again once it runs.
    assert poll(
        lambda: httpx.get(f"http://127.0.0.1:{stack.app('ingestion').http_port}/v1.0/healthz").status_code == 204
    )

import asyncio
import json

from services.common import roundtrip
from services.common.events import EventType, RoundtripPing
from services.common.ports import Versioned
from tests.fakes import FakeBlobStore, FakePublisher, FakeStateStore


def run(coro):
    return asyncio.run(coro)


def test_send_writes_the_blob_checks_etags_and_publishes():
    state, blobs, publisher = FakeStateStore(), FakeBlobStore(), FakePublisher()
    steps = run(roundtrip.send("r1", "ingestion", state, blobs, publisher))
    assert [s["name"] for s in steps] == ["blob write", "state etag", "publish"]
    assert all(s["ok"] for s in steps), steps
    assert json.loads(blobs.blobs["roundtrip/r1.json"]) == {"run_id": "r1", "written_by": "ingestion"}
    assert state.items == {}, "the ETag check leaves no state behind"
    ((event_type, payload, subject),) = publisher.sent
    assert event_type == EventType.ROUNDTRIP_PING and payload.blob_key == "roundtrip/r1.json" and subject == "r1"


class LastWriteWinsStore(FakeStateStore):
    """A store that ignores ETags: the check must notice."""

    async def save(self, key, value, etag=None):
        self.items[key] = Versioned(value, "same")


def test_etag_check_fails_on_a_store_that_accepts_stale_etags():
    steps = run(roundtrip.send("r1", "ingestion", LastWriteWinsStore(), FakeBlobStore(), FakePublisher()))
    etag = next(s for s in steps if s["name"] == "state etag")
    assert not etag["ok"] and "ACCEPTED" in etag["detail"]


def ping(run_id="r1", blob_key="roundtrip/r1.json") -> RoundtripPing:
    return RoundtripPing(run_id=run_id, blob_key=blob_key)


ATTRIBUTES = {"id": "e1", "source": "/daprml/ingestion"}


def test_receive_reads_the_blob_and_records_the_ping():
    state, blobs = FakeStateStore(), FakeBlobStore()
    blobs.blobs["roundtrip/r1.json"] = b'{"run_id": "r1", "written_by": "ingestion"}'
    run(roundtrip.receive(ATTRIBUTES, ping(), app_id="training", state=state, blobs=blobs))
    record = json.loads(state.items["roundtrip-r1"].value)
    assert record["blob_ok"] is True and record["received_by"] == "training"
    assert record["event_source"] == "/daprml/ingestion" and record["event_id"] == "e1"


def test_receive_records_a_missing_blob_as_not_ok():
    state = FakeStateStore()
    run(roundtrip.receive(ATTRIBUTES, ping(), app_id="training", state=state, blobs=FakeBlobStore()))
    record = json.loads(state.items["roundtrip-r1"].value)
    assert record["blob_ok"] is False and "not found" in record["blob_detail"]

import json

import pytest

from services.common import events
from services.common.events import DatasetVersionCommitted, EventType, InvalidEvent, RoundtripPing


def test_encoded_event_is_a_structured_cloudevent_with_type_source_and_payload():
    ping = RoundtripPing(run_id="r1", blob_key="roundtrip/r1.json")
    body = events.encode(EventType.ROUNDTRIP_PING, "/daprml/ingestion", ping, subject="r1")
    envelope = json.loads(body)
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "io.daprml.roundtrip.ping.v1"
    assert envelope["source"] == "/daprml/ingestion"
    assert envelope["subject"] == "r1"
    assert envelope["id"]
    assert envelope["data"]["run_id"] == "r1"


def test_decode_reads_back_what_encode_wrote():
    payload = DatasetVersionCommitted(dataset="iris", version=3, row_count=150, schema_hash="abc")
    body = events.encode(EventType.DATASET_VERSION_COMMITTED, "/daprml/ingestion", payload)
    attributes, decoded = events.decode(body, EventType.DATASET_VERSION_COMMITTED)
    assert decoded == payload
    assert attributes["source"] == "/daprml/ingestion"


def test_each_event_type_has_its_topic():
    assert events.topic_of(EventType.DATASET_VERSION_COMMITTED) == "dataset-versions"
    assert events.topic_of(EventType.ROUNDTRIP_PING) == "roundtrip"


def test_encode_refuses_a_payload_of_another_event_type():
    with pytest.raises(TypeError, match="RoundtripPing"):
        events.encode(
            EventType.ROUNDTRIP_PING,
            "/x",
            DatasetVersionCommitted(dataset="d", version=1, row_count=0, schema_hash="h"),
        )


def test_decode_accepts_data_sent_as_a_json_string():
    data = json.dumps({"run_id": "r", "blob_key": "roundtrip/r.json"})
    envelope = {"type": str(EventType.ROUNDTRIP_PING), "data": data}
    _, ping = events.decode(envelope, EventType.ROUNDTRIP_PING)
    assert ping.run_id == "r"


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "io.other.v1", "data": {}}', "expected event type"),
        (b'{"type": "io.daprml.roundtrip.ping.v1", "data": {"run_id": "r"}}', "blob_key"),
        (b'{"type": "io.daprml.roundtrip.ping.v1", "data": {"run_id": "bad id!", "blob_key": "k"}}', "run_id"),
        (b'{"type": "io.daprml.roundtrip.ping.v1", "data": "{not json"}', "string that is not JSON"),
    ],
)
def test_decode_rejects_what_no_retry_can_fix(body, message):
    with pytest.raises(InvalidEvent, match=message):
        events.decode(body, EventType.ROUNDTRIP_PING)

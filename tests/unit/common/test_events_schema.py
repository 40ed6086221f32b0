"""services/common/events.schema.json is what subscribers in other languages (services/notifier)
read instead of our Python models: it must say what the models say now."""

import json

from services.common import events
from services.common.events import EventType, ModelAliasChanged


def test_the_committed_schema_file_matches_the_payload_models():
    committed = json.loads(events.SCHEMA_FILE.read_text())
    assert committed == events.json_schemas(), (
        "a payload model, topic or event type changed: run `python -m services.common.events` and commit "
        f"{events.SCHEMA_FILE.name}"
    )


def test_every_event_type_is_in_the_file_with_its_topic():
    exported = events.json_schemas()["events"]
    assert set(exported) == {str(t) for t in EventType}
    for event_type, (topic, model) in events.ROUTES.items():
        entry = exported[str(event_type)]
        # Heartbeats travel on the replica component only, under their replica topic.
        assert entry["type"] == str(event_type) and entry.get("topic", entry.get("every_replica_topic")) in (
            str(topic),
            f"{topic}{events.REPLICA_SUFFIX}",
        )
        assert entry["schema"]["title"] == model.__name__


def test_the_schema_uses_the_wire_names():
    schema = events.json_schemas()["events"][str(EventType.MODEL_ALIAS_CHANGED)]["schema"]
    assert {"from", "to"} <= set(schema["required"])
    assert "from_version" not in schema["properties"]
    wire = ModelAliasChanged(model="iris", alias="champion", from_version=None, to_version=2, reason="api")
    assert set(wire.model_dump(mode="json")) == set(schema["properties"])


def test_main_writes_the_file_it_is_given(tmp_path):
    target = tmp_path / "events.schema.json"
    assert events.main([str(target)]) == 0
    assert json.loads(target.read_text()) == events.json_schemas()

"""The registry's events travel like every other: their own topics, CloudEvents both ways."""

import json

from services.common import events
from services.common.events import EventType, ModelAliasChanged


def test_model_events_have_topics_of_their_own():
    assert events.topic_of(EventType.MODEL_VERSION_REGISTERED) == "model-versions"
    assert events.topic_of(EventType.MODEL_ALIAS_CHANGED, "run1-") == "run1-model-aliases"


def test_an_alias_change_carries_from_and_to_and_reads_back():
    change = ModelAliasChanged(model="iris", alias="champion", from_version=None, to_version=2, reason="promotion")
    body = events.encode(EventType.MODEL_ALIAS_CHANGED, "/daprml/registry", change, event_id="iris-alias-1")
    envelope = json.loads(body)
    assert envelope["id"] == "iris-alias-1"
    assert envelope["data"] == {"model": "iris", "alias": "champion", "from": None, "to": 2, "reason": "promotion"}
    assert events.decode(body, EventType.MODEL_ALIAS_CHANGED)[1] == change

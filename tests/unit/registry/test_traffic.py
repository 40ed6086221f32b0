"""The traffic table in the model record: what a table may name, its history entries and
events, and a version leaving it when it becomes champion."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.common.contracts.models import Traffic
from services.common.events import EventType, ModelTrafficChanged
from services.registry.domain import traffic as tables
from services.registry.domain.errors import Conflict, Unprocessable
from services.registry.domain.model import ModelRecord
from services.registry.domain.views import traffic as view
from tests.unit.registry.test_model_record import with_versions

AT = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 1, 2, tzinfo=UTC)


def table(canary=(), shadows=()) -> Traffic:
    return Traffic.model_validate(
        {
            "canary": [{"version": v, "percent": p} for v, p in canary],
            "shadows": [{"version": v, "percent": p} for v, p in shadows],
        }
    )


def served(champion=1, versions=4):
    """iris with `versions` versions, `champion` its champion, the outbox and history emptied."""
    record = with_versions(versions)
    record.move_alias("champion", champion, "api", AT, "ops key")
    record.outbox.clear()
    record.unfiled.clear()
    return record


def traffic_events(record):
    return [
        ModelTrafficChanged.model_validate(e.payload)
        for e in record.outbox
        if e.type == EventType.MODEL_TRAFFIC_CHANGED
    ]


def test_a_table_is_kept_recorded_with_who_and_why_and_announced():
    record = served()
    wanted = table(canary=[(2, 30)], shadows=[(3, 20)])
    assert record.set_traffic(wanted, AT, "ops key", "v2 on a third") is True
    assert (record.traffic, record.traffic_at, record.traffic_by) == (wanted, AT, "ops key")
    (entry,) = record.unfiled
    assert (entry.seq, entry.actor, entry.action, entry.reason) == (2, "ops key", "traffic.changed", "v2 on a third")
    assert entry.details == {
        "from": {"canary": [], "shadows": []},
        "to": {"canary": [{"version": 2, "percent": 30.0}], "shadows": [{"version": 3, "percent": 20.0}]},
    }
    assert [(e.type, e.id, e.subject) for e in record.outbox] == [
        (EventType.MODEL_TRAFFIC_CHANGED, "iris-traffic-2", "iris/traffic"),
        (EventType.MODEL_HISTORY_RECORDED, "iris-history-2", "iris"),
    ]
    assert traffic_events(record) == [ModelTrafficChanged(model="iris", traffic=wanted, reason="v2 on a third")]


def test_the_same_table_again_records_and_announces_nothing():
    record = served()
    record.set_traffic(table(canary=[(2, 10)]), AT, "ops key", "first")
    count, outbox = record.history_count, list(record.outbox)
    assert record.set_traffic(table(canary=[(2, 10.0)]), LATER, "someone else", "again") is False
    assert (record.history_count, record.outbox, record.traffic_at, record.traffic_by) == (count, outbox, AT, "ops key")


def test_the_order_of_the_canaries_is_part_of_the_table():
    # Inference lays the canaries' shares out in table order: another order sends keys elsewhere.
    record = served()
    record.set_traffic(table(canary=[(2, 10), (3, 20)]), AT, "ops key", "set")
    assert record.set_traffic(table(canary=[(3, 20), (2, 10)]), AT, "ops key", "swapped") is True


@pytest.mark.parametrize(
    ("wanted", "words"),
    [
        (table(canary=[(9, 10)]), "has no version 9; it has versions 1 to 4"),
        (table(canary=[(2, 10)], shadows=[(7, 5), (8, 5)]), "has no version 7, 8"),
        (table(canary=[(1, 10)]), "version 1 is the champion of model 'iris'"),
        (table(shadows=[(1, 50)]), "version 1 is the champion of model 'iris'"),
    ],
    ids=["unknown", "unknowns", "champion-canary", "champion-shadow"],
)
def test_a_table_naming_an_unknown_version_or_the_champion_is_refused_and_changes_nothing(wanted, words):
    record = served()
    before = record.model_copy(deep=True)
    with pytest.raises(Unprocessable, match=words):
        record.set_traffic(wanted, AT, "ops key", "bad")
    assert record == before


def test_a_model_without_a_champion_takes_no_table_but_may_clear_one():
    record = with_versions(2)
    with pytest.raises(Conflict, match="has no champion"):
        record.set_traffic(table(canary=[(2, 10)]), AT, "ops key", "too early")
    assert record.set_traffic(Traffic(), AT, "ops key", "clear") is False  # empty already: nothing to record


def test_clearing_a_table_is_a_change_with_its_entry():
    record = served()
    record.set_traffic(table(shadows=[(2, 100)]), AT, "ops key", tables.SET)
    record.set_traffic(Traffic(), LATER, "ops key", tables.CLEARED)
    assert [e.reason for e in record.unfiled] == ["traffic set", "traffic cleared"]
    assert record.unfiled[-1].details["to"] == {"canary": [], "shadows": []}
    assert traffic_events(record)[-1].traffic == Traffic()


@pytest.mark.parametrize("cause", ["api", "promotion", "rollback"])
def test_a_canary_made_champion_leaves_the_table_in_the_same_change(cause):
    record = served(champion=1)
    record.set_traffic(table(canary=[(2, 30), (3, 10)], shadows=[(4, 5)]), AT, "ops key", "set")
    record.outbox.clear()
    record.move_alias("champion", 2, cause, LATER, "trainer", "v2 is better")
    assert record.aliases["champion"] == 2
    assert record.traffic == table(canary=[(3, 10)], shadows=[(4, 5)])  # the others keep their share
    assert (record.traffic_at, record.traffic_by) == (LATER, "trainer")
    moved, left = record.unfiled[-2:]
    assert (moved.action, left.action) == ("alias.moved", "traffic.changed")
    assert left.seq == moved.seq + 1 and left.actor == "trainer"
    assert left.reason == f"version 2 became champion ({cause}): it leaves the traffic table"
    assert left.details["from"]["canary"][0] == {"version": 2, "percent": 30.0}
    assert [e.type for e in record.outbox] == [
        EventType.MODEL_ALIAS_CHANGED,
        EventType.MODEL_HISTORY_RECORDED,
        EventType.MODEL_TRAFFIC_CHANGED,
        EventType.MODEL_HISTORY_RECORDED,
    ]
    (event,) = traffic_events(record)
    assert event.traffic == record.traffic and "version 2 became champion" in event.reason


def test_a_shadow_made_champion_leaves_the_table_and_other_moves_leave_it_alone():
    record = served(champion=1)
    record.set_traffic(table(canary=[(2, 30)], shadows=[(3, 5)]), AT, "ops key", "set")
    count = record.history_count
    record.move_alias("challenger", 2, "api", LATER, "ops key")  # not the champion: the table stays
    record.move_alias("champion", 4, "api", LATER, "ops key")  # a version the table does not name
    assert record.traffic == table(canary=[(2, 30)], shadows=[(3, 5)]) and record.history_count == count + 2
    record.move_alias("champion", 3, "api", LATER, "ops key")
    assert record.traffic == table(canary=[(2, 30)]) and record.unfiled[-1].action == "traffic.changed"


def test_the_view_gives_the_champion_what_the_canaries_leave():
    record = served(champion=1)
    record.set_traffic(table(canary=[(2, 33.3), (3, 10)], shadows=[(4, 50)]), AT, "ops key", "set")
    answer = view(record)
    assert (answer.model, answer.champion, answer.champion_percent) == ("iris", 1, 56.7)
    assert (answer.changed_at, answer.changed_by) == (AT, "ops key")
    assert view(with_versions(1)).model_dump() == {
        "model": "iris",
        "champion": None,
        "champion_percent": 100.0,
        "traffic": {"canary": [], "shadows": []},
        "changed_at": None,
        "changed_by": None,
    }


def test_a_record_stored_before_tables_existed_reads_with_an_empty_one():
    stored = with_versions(1).model_dump(mode="json")
    for field in ("traffic", "traffic_at", "traffic_by"):
        stored.pop(field)
    record = ModelRecord.model_validate(stored)
    assert (record.traffic, record.traffic_at, record.traffic_by) == (Traffic(), None, None)


@pytest.mark.parametrize(
    "body",
    [
        {"canary": [{"version": 2, "percent": 60}, {"version": 3, "percent": 40}]},
        {"canary": [{"version": 2, "percent": 10}], "shadows": [{"version": 2, "percent": 10}]},
        {"canary": [{"version": 2, "percent": 0}]},
        {"shadows": [{"version": 2, "percent": 101}]},
        {"canary": [], "weights": []},
    ],
    ids=["adds-to-100", "named-twice", "zero", "over-100", "unknown-field"],
)
def test_the_contract_refuses_a_table_that_cannot_be_applied(body):
    with pytest.raises(ValidationError):
        Traffic.model_validate(body)

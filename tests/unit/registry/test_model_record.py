"""The model record: gapless version numbers, alias moves with their history entries and
events, rollback, and records stored before the history left them."""

import json
from datetime import UTC, datetime

import pytest

from services.common.contracts.models import RegisterVersion
from services.common.events import EventType
from services.registry.domain.errors import BadInput
from services.registry.domain.history import RECENT_MOVES
from services.registry.domain.model import ModelRecord, check_alias
from tests.api.test_registry_api import registration

AT = datetime(2026, 1, 1, tzinfo=UTC)


def with_versions(n):
    record = ModelRecord(name="iris")
    for i in range(n):
        record.add_version(RegisterVersion.model_validate(registration(job=f"job-{i}")), f"key-{i}", AT)
    return record


def test_versions_are_numbered_from_1_without_gaps():
    record = with_versions(3)
    assert [v.version for v in record.versions] == [1, 2, 3] and record.next_version() == 4
    assert record.task == "classification"


def test_each_version_is_announced_with_an_id_of_its_own():
    record = with_versions(2)
    assert [e.type for e in record.outbox] == [EventType.MODEL_VERSION_REGISTERED] * 2
    assert len({e.id for e in record.outbox}) == 2


def test_an_alias_move_is_recorded_with_who_and_why_and_announced_once():
    record = with_versions(2)
    record.outbox.clear()
    record.move_alias("champion", 1, "promotion", AT, "training", "auto policy: no champion to beat")
    record.move_alias("champion", 2, "api", AT, "ops key", "v2 fixes the drift")
    assert record.move_alias("champion", 2, "api", AT, "ops key") is None  # already there: nothing recorded
    assert [(c.from_version, c.to_version, c.reason, c.actor) for c in record.recent] == [
        (None, 1, "promotion", "training"),
        (1, 2, "api", "ops key"),
    ]
    assert [(e.seq, e.actor, e.action, e.reason, e.details) for e in record.unfiled] == [
        (1, "training", "alias.moved", "auto policy: no champion to beat", moved(None, 1, "promotion")),
        (2, "ops key", "alias.moved", "v2 fixes the drift", moved(1, 2, "api")),
    ]
    assert record.history_count == 2
    assert [(e.type, e.id) for e in record.outbox] == [
        (EventType.MODEL_ALIAS_CHANGED, "iris-alias-1"),
        (EventType.MODEL_HISTORY_RECORDED, "iris-history-1"),
        (EventType.MODEL_ALIAS_CHANGED, "iris-alias-2"),
        (EventType.MODEL_HISTORY_RECORDED, "iris-history-2"),
    ]
    assert record.outbox[2].payload == {"model": "iris", "alias": "champion", "from": 1, "to": 2, "reason": "api"}
    assert record.outbox[3].payload == {
        "model": "iris",
        "seq": 2,
        "at": "2026-01-01T00:00:00Z",
        "actor": "ops key",
        "action": "alias.moved",
        "reason": "v2 fixes the drift",
        "details": moved(1, 2, "api"),
    }


def moved(before, to, cause, alias="champion"):
    return {"alias": alias, "from": before, "to": to, "cause": cause}


def test_removing_an_alias_is_a_move_to_none():
    record = with_versions(1)
    record.move_alias("challenger", 1, "api", AT, "ops key")
    record.move_alias("challenger", None, "api", AT, "ops key")
    assert "challenger" not in record.aliases and record.recent[-1].to_version is None
    assert record.unfiled[-1].details == moved(1, None, "api", alias="challenger")


def test_each_entry_of_the_history_gets_the_next_seq_whatever_its_action():
    record = with_versions(1)
    record.note("policy.changed", "trainer", "", AT, {})
    record.move_alias("champion", 1, "api", AT, "ops key")
    record.note("monitoring.check", "monitor", "drift on petal", AT, {"psi": 0.4})
    assert [(e.seq, e.action) for e in record.unfiled] == [
        (1, "policy.changed"),
        (2, "alias.moved"),
        (3, "monitoring.check"),
    ]


def test_the_record_keeps_only_the_latest_alias_moves():
    record = with_versions(2)
    for i in range(RECENT_MOVES + 5):
        record.move_alias("champion", 1 + i % 2, "api", AT, "ops key")
    assert len(record.recent) == RECENT_MOVES and record.history_count == RECENT_MOVES + 5
    assert record.recent[-1].to_version == 1 + (RECENT_MOVES + 4) % 2


def champions(record, *moves):
    for to, reason in moves:
        record.move_alias("champion", to, reason, AT, "someone")
    return record


def test_rollback_goes_to_the_champion_before_the_current_one():
    record = champions(with_versions(3), (1, "promotion"), (2, "promotion"), (3, "api"))
    assert record.rollback_target() == 2


def test_rolling_back_twice_goes_two_champions_back():
    record = champions(with_versions(3), (1, "promotion"), (2, "promotion"), (3, "promotion"))
    champions(record, (record.rollback_target(), "rollback"))
    assert record.aliases["champion"] == 2 and record.rollback_target() == 1
    champions(record, (record.rollback_target(), "rollback"))
    assert record.aliases["champion"] == 1 and record.rollback_target() is None


def test_the_first_champion_has_nothing_to_roll_back_to():
    assert champions(with_versions(1), (1, "promotion")).rollback_target() is None
    assert with_versions(1).rollback_target() is None


def test_rollback_ignores_other_aliases_and_restores_a_deleted_champion():
    record = champions(with_versions(2), (1, "promotion"))
    record.move_alias("challenger", 2, "promotion", AT, "training")
    champions(record, (None, "api"))
    assert record.rollback_target() == 1


# records stored before the history left the record: read as its first entries


def legacy_record(moves):
    """A model record as the registry stored it before: every alias move in `history`."""
    record = with_versions(3).model_dump(
        mode="json", exclude={"recent", "champions", "had_champion", "history_count", "unfiled"}
    )
    record["outbox"] = []
    record["history"] = [
        {"alias": alias, "from": before, "to": to, "reason": cause, "at": "2025-06-01T00:00:00Z"}
        for alias, before, to, cause in moves
    ]
    return json.dumps(record)


OLD_MOVES = [
    ("champion", None, 1, "promotion"),
    ("challenger", None, 2, "promotion"),
    ("champion", 1, 3, "api"),
    ("champion", 3, 1, "rollback"),
    ("champion", 1, 2, "api"),
]


def test_an_old_record_reads_its_alias_moves_as_the_first_entries_of_its_history():
    record = ModelRecord.model_validate_json(legacy_record(OLD_MOVES))
    assert record.history_count == 5 and [e.seq for e in record.unfiled] == [1, 2, 3, 4, 5]
    assert {e.actor for e in record.unfiled} == {"unknown"} and {e.action for e in record.unfiled} == {"alias.moved"}
    assert record.unfiled[3].details == moved(3, 1, "rollback")
    assert [(c.from_version, c.to_version, c.actor) for c in record.recent][-1] == (1, 2, None)
    assert record.outbox == []  # announced when they were made


def test_an_old_record_rolls_back_as_its_history_says_and_numbers_new_entries_after_the_old():
    record = ModelRecord.model_validate_json(legacy_record(OLD_MOVES))
    # champion: 1, then 3, rolled back to 1, then 2: rolling back returns to 1, then nowhere.
    assert record.rollback_target() == 1 and record.ever_had_champion()
    record.move_alias("champion", record.rollback_target(), "rollback", AT, "ops key")
    assert record.rollback_target() is None
    assert record.unfiled[-1].seq == 6 and [e.id for e in record.outbox] == ["iris-alias-6", "iris-history-6"]


def test_an_old_record_is_stored_without_its_old_history_once_read():
    stored = ModelRecord.model_validate_json(legacy_record(OLD_MOVES)).model_dump_json()
    assert '"history"' not in stored
    again = ModelRecord.model_validate_json(stored)
    assert again.history_count == 5 and len(again.unfiled) == 5 and again.rollback_target() == 1


@pytest.mark.parametrize("alias", ["champion", "challenger", "a", "blue-green_2", "v1"])
def test_valid_aliases(alias):
    check_alias(alias)


@pytest.mark.parametrize(
    ("alias", "why"),
    [
        ("Champion", "lower-case"),
        ("-x", "starting with"),
        ("a" * 64, "1 to 63"),
        ("a/b", "lower-case"),
        ("12", "reads as a version"),
        ("latest", "reads as a version"),
    ],
)
def test_invalid_aliases_are_refused_saying_why(alias, why):
    with pytest.raises(BadInput, match=why):
        check_alias(alias)

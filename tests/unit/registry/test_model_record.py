"""The model record: gapless version numbers, alias moves with their history and events,
rollback from that history."""

from datetime import UTC, datetime

import pytest

from services.common.contracts.models import RegisterVersion
from services.common.events import EventType
from services.registry.domain.errors import BadInput
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


def test_an_alias_move_is_recorded_and_announced_once():
    record = with_versions(2)
    record.outbox.clear()
    record.move_alias("champion", 1, "promotion", AT)
    record.move_alias("champion", 2, "api", AT)
    assert record.move_alias("champion", 2, "api", AT) is None  # already there: nothing recorded
    assert [(c.from_version, c.to_version, c.reason) for c in record.history] == [(None, 1, "promotion"), (1, 2, "api")]
    assert [e.payload for e in record.outbox] == [
        {"model": "iris", "alias": "champion", "from": None, "to": 1, "reason": "promotion"},
        {"model": "iris", "alias": "champion", "from": 1, "to": 2, "reason": "api"},
    ]
    assert [e.id for e in record.outbox] == ["iris-alias-1", "iris-alias-2"]


def test_removing_an_alias_is_a_move_to_none():
    record = with_versions(1)
    record.move_alias("challenger", 1, "api", AT)
    record.move_alias("challenger", None, "api", AT)
    assert "challenger" not in record.aliases and record.history[-1].to_version is None


def champions(record, *moves):
    for to, reason in moves:
        record.move_alias("champion", to, reason, AT)
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
    record.move_alias("challenger", 2, "promotion", AT)
    champions(record, (None, "api"))
    assert record.rollback_target() == 1


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

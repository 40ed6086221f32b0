import pytest

from services.monitor.domain.index import (
    ModelIndex,
    PartEntry,
    Segment,
    SegmentFull,
    days_from,
    with_part,
    with_segment,
)
from tests.unit.monitor.events import T0


def part(name: str = "120000000000-0123456789ab") -> PartEntry:
    return PartEntry(name=name, rows=1, first_at=T0, last_at=T0)


def test_a_part_is_listed_once_however_often_its_change_is_applied():
    once = with_part(None, part(), max_parts=10)
    assert with_part(once.model_copy(deep=True), part(), max_parts=10) == once == Segment(parts=[part()])


def test_a_full_segment_refuses_another_part():
    full = Segment(parts=[part(f"13000000000{i}-0123456789ab") for i in range(2)])
    with pytest.raises(SegmentFull):
        with_part(full, part(), max_parts=2)
    assert with_part(full, full.parts[0], max_parts=2) == full  # one it lists already is no change


def test_segments_of_a_day_only_ever_grow_whatever_order_changes_come_in():
    index = with_segment(with_segment(None, "2025-01-31", 2), "2025-01-31", 1)
    assert index.days == {"2025-01-31": 2}
    assert with_segment(index, "2025-02-01", 1).days == {"2025-01-31": 2, "2025-02-01": 1}


def test_days_from_a_day_are_in_order():
    index = ModelIndex(days={"2025-02-01": 1, "2025-01-30": 3, "2025-01-31": 2})
    assert days_from(index, "2025-01-31") == [("2025-01-31", 2), ("2025-02-01", 1)]
    assert [d for d, _ in days_from(index, None)] == ["2025-01-30", "2025-01-31", "2025-02-01"]

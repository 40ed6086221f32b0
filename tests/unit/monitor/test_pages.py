from services.monitor.domain.index import PartEntry
from services.monitor.domain.pages import Cursor, Gathering, candidates
from services.monitor.domain.rows import rows_of
from tests.unit.monitor.events import T0, logged, seconds


def entry(name: str, first: float, last: float) -> PartEntry:
    return PartEntry(name=f"120000000000-{name * 12}", rows=1, first_at=T0 + seconds(first), last_at=T0 + seconds(last))


def test_a_cursor_with_a_prediction_admits_only_what_comes_after_it_at_that_time():
    rows, _ = rows_of(logged(records=3))
    assert [Cursor().admits(r) for r in rows] == [True, True, True]
    assert [Cursor(T0).admits(r) for r in rows] == [True, True, True]  # since is inclusive
    assert [Cursor(T0, rows[0].prediction_id).admits(r) for r in rows] == [False, True, True]
    assert [Cursor(T0 + seconds(0.001)).admits(r) for r in rows] == [False, False, False]


def test_candidates_are_the_parts_reaching_since_in_the_order_of_their_first_row():
    parts = [entry("b", 5, 9), entry("a", 0, 1), entry("c", 2, 3), entry("d", 1, 20)]
    assert [p.name[-1] for p in candidates(parts, T0 + seconds(3))] == ["d", "c", "b"]
    assert [p.name[-1] for p in candidates(parts, None)] == ["a", "d", "c", "b"]


def test_gathering_keeps_each_prediction_once_and_only_the_earliest_a_page_can_hold():
    early, _ = rows_of(logged(records=2, at=T0))
    late, _ = rows_of(logged(records=2, at=T0 + seconds(1)))
    gathering = Gathering(Cursor(), limit=3)
    gathering.add(late)
    gathering.add([*early, early[0]])
    gathering.add(late[:1])  # a copy of one kept
    assert gathering.duplicates == 2
    assert [r.prediction_id for r in gathering.settled(None)] == [
        *(r.prediction_id for r in early),
        late[0].prediction_id,
    ]


def test_only_rows_before_any_unread_part_are_settled():
    rows, _ = rows_of(logged(records=1, at=T0))
    later, _ = rows_of(logged(records=1, at=T0 + seconds(2)))
    gathering = Gathering(Cursor(), limit=10)
    gathering.add([*rows, *later])
    assert gathering.settled(T0 + seconds(2)) == rows  # an unread part may hold rows at that time too
    assert gathering.settled(T0) == []

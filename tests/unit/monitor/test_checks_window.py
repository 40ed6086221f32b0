"""A check's window read from the inference table: the newest rows within its hours, each once,
never more than its rows, and no more parts read than its budget (saying it stopped short)."""

import asyncio
from datetime import timedelta

from services.monitor.window import newest_rows
from tests.unit.monitor.drifting import NOW, captured, draw, monitoring


def tables_with(*batches):
    _, _, tables = monitoring()
    for rows in batches:
        asyncio.run(tables.write(rows))
    return tables


def read(tables, since=None, until=NOW, max_rows=1000, max_parts=100):
    return asyncio.run(newest_rows(tables.table, "iris", since, until, max_rows, max_parts))


def test_the_newest_rows_are_kept_in_time_order_when_there_are_more():
    old = captured(draw(50, seed=1), at=NOW - timedelta(minutes=30))
    new = captured(draw(300, seed=2), at=NOW - timedelta(minutes=5))
    window = read(tables_with(old, new), max_rows=120)
    assert [r.prediction_id for r in window.rows] == [r.prediction_id for r in new[-120:]]
    assert window.truncated


def test_rows_outside_the_hours_or_after_until_are_left_out():
    before = captured(draw(10, seed=1), at=NOW - timedelta(hours=3))
    inside = captured(draw(10, seed=2), at=NOW - timedelta(hours=1))
    after = captured(draw(10, seed=3), at=NOW + timedelta(minutes=1))
    window = read(tables_with(before, inside, after), since=NOW - timedelta(hours=2))
    assert [r.prediction_id for r in window.rows] == [r.prediction_id for r in inside]
    assert not window.truncated


def test_rows_of_other_days_are_read_newest_day_first():
    yesterday = captured(draw(20, seed=1), at=NOW - timedelta(days=1))
    today = captured(draw(20, seed=2), at=NOW - timedelta(minutes=1))
    window = read(tables_with(yesterday, today), max_rows=30)
    assert window.rows[-20:] == today and len(window.rows) == 30 and window.rows[0] in yesterday


def test_a_prediction_in_two_parts_is_kept_once():
    rows = captured(draw(40, seed=1))
    window = read(tables_with(rows, rows))
    assert len(window.rows) == 40 and window.parts_read == 2


def test_overlapping_parts_give_the_newest_rows_whichever_was_written_first():
    late = captured(draw(30, seed=1), at=NOW - timedelta(minutes=2))
    early = captured(draw(30, seed=2), at=NOW - timedelta(minutes=9))
    straddling = captured(draw(30, seed=3), at=NOW - timedelta(minutes=10)) + captured(
        draw(5, seed=4), at=NOW - timedelta(minutes=1)
    )
    window = read(tables_with(late, early, straddling), max_rows=40)
    newest = sorted(late + early + straddling, key=lambda r: r.at)[-40:]
    assert {r.prediction_id for r in window.rows} == {r.prediction_id for r in newest}


def test_the_part_budget_stops_the_read_and_says_so():
    batches = [captured(draw(10, seed=i), at=NOW - timedelta(minutes=10 - i)) for i in range(5)]
    window = read(tables_with(*batches), max_parts=2)
    assert window.parts_read == 2 and window.truncated
    assert [r.prediction_id for r in window.rows] == [r.prediction_id for r in batches[3] + batches[4]]


def test_a_model_never_captured_has_an_empty_window():
    window = read(tables_with())
    assert window.rows == [] and window.parts_read == 0 and not window.truncated

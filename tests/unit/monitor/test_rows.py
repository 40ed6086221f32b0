from datetime import datetime

import pytest

from services.monitor.domain.rows import day_of, derived_call_id, key_of, row_key, rows_of, utc
from tests.unit.monitor.events import T0, logged


def test_each_record_becomes_a_row_with_its_id_time_inputs_output_and_probabilities():
    event = logged(
        records=2,
        classes=[0, 1.0],
        probabilities=[[0.9, 0.1], [0.3, None]],
        warnings=[["unseen category"], []],
    )
    rows, derived = rows_of(event)
    assert not derived
    assert [r.prediction_id for r in rows] == event.prediction_ids
    assert [(r.inputs, r.output, r.at, r.model, r.version, r.runtime) for r in rows] == [
        ({"x": 0}, 0, T0, "iris", 1, "sklearn"),
        ({"x": 1}, 1, T0, "iris", 1, "sklearn"),
    ]
    # Classes named as references name them (1.0 is class "1"); a missing probability is left out.
    assert [r.probabilities for r in rows] == [{"0": 0.9, "1": 0.1}, {"0": 0.3}]
    assert [r.warnings for r in rows] == [["unseen category"], []]
    assert rows[0].request_id == event.request_id


def test_an_event_without_ids_gets_ids_made_from_the_call_the_same_each_time_it_comes():
    event = logged(records=3, with_ids=False)
    rows, derived = rows_of(event)
    again, _ = rows_of(event.model_copy())
    assert derived
    assert [r.prediction_id for r in rows] == [f"{derived_call_id(event)}-{i}" for i in range(3)]
    assert [r.prediction_id for r in again] == [r.prediction_id for r in rows]
    other = logged(records=1, with_ids=False)
    assert derived_call_id(other) != derived_call_id(event)


def test_a_long_request_id_is_cut_to_what_a_row_keeps():
    rows, _ = rows_of(logged(records=1).model_copy(update={"request_id": "r" * 500}))
    assert rows[0].request_id == "r" * 200


def test_rows_of_one_call_sort_by_their_place_in_it_not_as_text():
    call = "a" * 32
    assert key_of(f"{call}-10", T0) > key_of(f"{call}-9", T0)
    rows, _ = rows_of(logged(records=12, call_id=call))
    assert [r.prediction_id for r in sorted(reversed(rows), key=row_key)] == [f"{call}-{i}" for i in range(12)]


@pytest.mark.parametrize(
    ("at", "day"),
    [
        ("2025-01-31T23:59:59+00:00", "2025-01-31"),
        ("2025-02-01T01:00:00+02:00", "2025-01-31"),
        ("2025-02-01T00:00:00", "2025-02-01"),
    ],
)
def test_a_row_is_filed_under_its_day_in_utc_and_a_time_without_a_zone_is_utc(at, day):
    assert day_of(datetime.fromisoformat(at)) == day
    assert utc(datetime.fromisoformat(at)).utcoffset().total_seconds() == 0

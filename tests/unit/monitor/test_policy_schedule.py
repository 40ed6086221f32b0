"""Schedules are read as Dapr's scheduler reads them (dapr/kit's cron parser with seconds and
descriptors): what it takes passes, what it refuses is refused with words saying why, and an
@every faster than a second is refused though the scheduler would take it."""

import pytest

from services.monitor.domain.schedule import MIN_EVERY_S, every_seconds, problem

TAKEN = [
    "@every 5s",
    "@every 1h30m",
    "@every 1.5h",
    "@every 90s",
    "@every 1s",
    "@daily",
    "@midnight",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "0 0 6 * * *",  # 06:00 every day
    "*/15 * * * * *",
    "0 30 * * * *",
    "0 0 9 * * mon-fri",
    "0 0 0 1 JAN,jul *",
    "0 0 12 ? * SUN",
    "5/10 * * * * *",  # 5-59/10
    "0,30 0-59/5 * * * *",
    "0 0 0 1,,15 * *",  # Go skips an empty list item
    "TZ=Europe/Berlin 0 0 6 * * *",
    "CRON_TZ=UTC @daily",
]

REFUSED = {
    "": "empty",
    "0 6 * * *": "exactly 6 fields",  # a 5-field crontab: no seconds
    "0 0 6 * * * 2025": "exactly 6 fields",
    "@every": "unrecognized descriptor",
    "@every 5": "not a duration",
    "@every five seconds": "not a duration",
    "@every -5s": "more often",
    "@every 0s": "more often",
    "@every 500ms": "more often",
    "@every 1h-30m": "not a duration",
    "@fortnightly": "unrecognized descriptor",
    "@daily ": "unrecognized descriptor",
    "60 * * * * *": "above 59",
    "0 60 * * * *": "above 59",
    "0 0 24 * * *": "above 23",
    "0 0 0 0 * *": "below 1",
    "0 0 0 32 * *": "above 31",
    "0 0 0 * 13 *": "above 12",
    "0 0 0 * * 7": "above 6",
    "0 0 0 * foo *": "not a number",
    "0 0 0 * * monday": "not a number",
    "5-1 * * * * *": "starts after it ends",
    "1-2-3 * * * * *": "too many hyphens",
    "*/0 * * * * *": "positive",
    "*/5/2 * * * * *": "too many slashes",
    "-1 * * * * *": "not a number",  # '-1' reads as a range with an empty start
    "TZ=Mars/Olympus 0 0 6 * * *": "unknown time zone",
    "TZ=UTC": "followed by",
    "x" * 201: "at most 200",
}


@pytest.mark.parametrize("schedule", TAKEN)
def test_what_the_scheduler_takes_passes(schedule):
    assert problem(schedule) is None


@pytest.mark.parametrize(("schedule", "why"), REFUSED.items())
def test_what_the_scheduler_refuses_is_refused_saying_why(schedule, why):
    found = problem(schedule)
    assert found is not None and why in found, found


def test_a_5_field_crontab_is_told_how_to_add_seconds():
    assert "'0 0 6 * * *'" in problem("0 6 * * *")


def test_every_reads_go_durations_in_seconds():
    assert every_seconds("@every 1h30m") == 5400
    assert every_seconds("@every 1.5s") == 1.5
    assert every_seconds("TZ=UTC @every 2m") == 120
    assert every_seconds("@daily") is None and every_seconds("0 0 6 * * *") is None
    assert MIN_EVERY_S == 1

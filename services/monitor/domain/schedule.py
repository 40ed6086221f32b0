"""Schedules as Dapr's scheduler reads them, checked before a job is sent to it.

Dapr 1.18's scheduler (go-etcd-cron 0.12, internal/scheduler/builder.go) parses a job's schedule
with dapr/kit 0.18's cron parser, configured with a seconds field, every other field required,
and descriptors (cron/parser.go). It accepts:

- six fields, `second minute hour day-of-month month day-of-week`, each a comma-separated list
  of `*`, `?`, a number or a name (`jan`-`dec`, `sun`-`sat`, any case), or a range `a-b`, each
  optionally with a step `/n` (`*/15`, `5/10` meaning `5-max/10`);
- `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`;
- `@every <Go duration>` (`90s`, `1h30m`, `1.5h`);
- any of those after `TZ=<zone> ` or `CRON_TZ=<zone> `.

`problem` answers what the parser would answer (as a sentence), mirroring it rule for rule, and
is stricter in two places where the scheduler would accept something harmful: an `@every`
duration must be at least MIN_EVERY_S (Go takes `0s` and negative ones, which would fire
without pause), and a zone prefix must be followed by a schedule (the parser slices the string
at the first space without checking there is one).

Pure: no I/O.
"""

import re
import zoneinfo
from typing import Final

MIN_EVERY_S: Final = 1.0
"""The shortest `@every` interval taken."""
MAX_LENGTH: Final = 200

DESCRIPTORS: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
MONTHS: Final = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}
WEEKDAYS: Final = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (name, lowest, highest, names) of each of the six fields, in order.
FIELDS: Final = (
    ("second", 0, 59, None),
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, WEEKDAYS),
)

# Go's time.ParseDuration: an optional sign, then one or more <decimal><unit>; "0" alone too.
_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_GO_INT = re.compile(r"^[+-]?[0-9]+$")


class Invalid(ValueError):
    """Why the scheduler would refuse a schedule."""


def problem(schedule: str) -> str | None:
    """None when Dapr's scheduler takes the schedule (and it fires at most every MIN_EVERY_S
    for `@every`), else why not."""
    try:
        _check(schedule)
    except Invalid as exc:
        return str(exc)
    return None


def every_seconds(schedule: str) -> float | None:
    """The interval of an `@every` schedule in seconds; None for any other schedule."""
    spec = _without_zone(schedule)
    return _duration(spec[len("@every ") :]) if spec.startswith("@every ") else None


def _check(schedule: str) -> None:
    if not schedule:
        raise Invalid("a schedule is empty: give a cron expression with seconds or @every <duration>")
    if len(schedule) > MAX_LENGTH:
        raise Invalid(f"a schedule has at most {MAX_LENGTH} characters")
    spec = _without_zone(schedule)
    if spec.startswith("@"):
        _descriptor(spec)
        return
    fields = spec.split()
    if len(fields) != len(FIELDS):
        raise Invalid(
            f"expected exactly 6 fields (second minute hour day-of-month month day-of-week), found {len(fields)}: "
            f"{spec!r} (a 5-field crontab needs a seconds field first: '0 {spec}')"
        )
    for text, (name, low, high, names) in zip(fields, FIELDS, strict=True):
        for part in (p for p in text.split(",") if p):  # Go's FieldsFunc skips empty parts
            _range(part, name, low, high, names)


def _without_zone(schedule: str) -> str:
    """The schedule after its TZ= or CRON_TZ= prefix, the zone checked."""
    if not schedule.startswith(("TZ=", "CRON_TZ=")):
        return schedule
    zone, space, rest = schedule.partition(" ")
    if not space or not rest.strip():
        raise Invalid(f"the time zone {zone!r} must be followed by a space and a schedule")
    name = zone.split("=", 1)[1]
    if name not in ("UTC", "Local"):
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"unknown time zone {name!r} (an IANA name such as Europe/Berlin)") from None
    return rest.strip()


def _descriptor(spec: str) -> None:
    if spec in DESCRIPTORS:
        return
    if spec.startswith("@every "):
        seconds = _duration(spec[len("@every ") :])
        if seconds < MIN_EVERY_S:
            raise Invalid(f"{spec!r} fires more often than every {MIN_EVERY_S:g}s")
        return
    raise Invalid(f"unrecognized descriptor {spec!r}: one of {', '.join(sorted(DESCRIPTORS))} or '@every <duration>'")


def _duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds."""
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    if body == "0":
        return 0.0
    position, total = 0, 0.0
    while position < len(body):
        found = _DURATION_PART.match(body, position)
        if found is None or found.group(1) in ("", "."):
            raise Invalid(f"{text!r} is not a duration (such as 30s, 5m, 1h30m)")
        total += float(found.group(1)) * _UNITS[found.group(2)]
        position = found.end()
    if not body:
        raise Invalid(f"{text!r} is not a duration (such as 30s, 5m, 1h30m)")
    return sign * total


def _range(expr: str, field: str, low: int, high: int, names: dict[str, int] | None) -> None:
    """One range of a field, as dapr/kit's getRange reads it."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    if low_and_high[0] in ("*", "?"):
        start, end = low, high  # Go ignores what follows a '*' before a step
    else:
        start = _number(low_and_high[0], field, names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _number(low_and_high[1], field, names)
        else:
            raise Invalid(f"too many hyphens in {expr!r} ({field})")
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], field, None)
        if len(low_and_high) == 1:
            end = high  # "N/step" means "N-max/step"
        if step == 0:
            raise Invalid(f"the step of {expr!r} ({field}) must be a positive number")
    elif len(range_and_step) > 2:
        raise Invalid(f"too many slashes in {expr!r} ({field})")
    if start < low:
        raise Invalid(f"{expr!r} starts below {low}, the smallest {field}")
    if end > high:
        raise Invalid(f"{expr!r} ends above {high}, the largest {field}")
    if start > end:
        raise Invalid(f"{expr!r} starts after it ends ({field})")


def _number(text: str, field: str, names: dict[str, int] | None) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    if not _GO_INT.match(text):
        raise Invalid(f"{text!r} is not a number ({field})")
    value = int(text)
    if value < 0:
        raise Invalid(f"negative number {text!r} ({field})")
    return value

"""What every outbox relay shares: records keep the events their last change owes, and a
periodic job publishes what is still owed, record by record."""

import logging
from collections.abc import Awaitable, Callable, Iterable

from services.common.ports import ConcurrencyConflict, SidecarUnavailable

log = logging.getLogger(__name__)


async def flush_each(names: Iterable[str], flush: Callable[[str], Awaitable[int]], kind: str) -> int:
    """Flushes the outbox of each named record; returns how many events went out. One record's
    trouble must not hold up the others' events: it is logged, and the next run tries again."""
    sent = 0
    for name in names:
        try:
            sent += await flush(name)
        except (SidecarUnavailable, ConcurrencyConflict) as exc:  # the bus or the store away: expected, no traceback
            log.warning("events of %s %s not published yet: %s", kind, name, exc)
        except Exception as exc:
            log.warning("events of %s %s not published yet: %s", kind, name, exc, exc_info=True)
    return sent

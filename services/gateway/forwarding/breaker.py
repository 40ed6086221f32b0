"""The gateway's circuit breakers: one per internal service, opened only by that service's own
failure to answer, never by what a client sends.

Dapr's breakers cannot be used for this (daprd 1.18 counts every answer outside 200-399, a
client's 4xx included, and shares one breaker per route among all callers: eleven invalid
calls from one key closed inference for everyone). Here only a call that did not reach the
service counts (its sidecar answered with an ERR_ code, or could not be reached): an answer of
the service itself, whatever its status, is a success. After `failures` such calls in a row
the breaker opens: calls get 503 at once for `open_s`, then one call goes through to try, and
its outcome closes or opens it again.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Breaker:
    failures: int
    open_s: float
    clock: Callable[[], float] = time.monotonic
    _in_a_row: int = 0
    _open_until: float | None = None
    _trying: bool = False
    trips: int = field(default=0)

    def allows(self) -> bool:
        """Whether a call may go out now (half-open: one trial call at a time)."""
        if self._open_until is None:
            return True
        if self.clock() < self._open_until or self._trying:
            return False
        self._trying = True
        return True

    def retry_after_s(self) -> float:
        return max(0.0, (self._open_until or 0.0) - self.clock())

    def succeeded(self) -> None:
        self._in_a_row, self._open_until, self._trying = 0, None, False

    def released(self) -> None:
        """The call ended without telling whether the service answers (the client's own fault)."""
        self._trying = False

    def failed(self) -> None:
        self._in_a_row += 1
        if self._trying or self._in_a_row >= self.failures:
            if self._open_until is None:
                self.trips += 1
            self._open_until, self._trying = self.clock() + self.open_s, False


class Breakers:
    """One breaker per app id, made on first use."""

    def __init__(self, failures: int, open_s: float, clock: Callable[[], float] = time.monotonic):
        self.failures, self.open_s, self.clock = failures, open_s, clock
        self._by_app: dict[str, Breaker] = {}

    def of(self, app_id: str) -> Breaker:
        if app_id not in self._by_app:
            self._by_app[app_id] = Breaker(self.failures, self.open_s, self.clock)
        return self._by_app[app_id]

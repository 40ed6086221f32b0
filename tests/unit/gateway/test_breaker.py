"""A breaker opens after failures in a row, holds calls back for a while, then lets one through
to try: its success closes it, its failure opens it again."""

from services.gateway.forwarding.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s


def test_it_opens_after_failures_in_a_row_and_a_success_in_between_starts_over():
    breaker = Breaker(failures=3, open_s=5, clock=Clock())
    for outcome in ("failed", "failed", "succeeded", "failed", "failed"):
        assert breaker.allows()
        getattr(breaker, outcome)()
    assert breaker.allows() and breaker.trips == 0
    breaker.failed()
    assert not breaker.allows() and breaker.trips == 1


def test_after_the_wait_one_call_tries_and_decides():
    clock = Clock()
    breaker = Breaker(failures=1, open_s=5, clock=clock)
    breaker.failed()
    clock.s = 4.9
    assert not breaker.allows() and round(breaker.retry_after_s(), 1) == 0.1
    clock.s = 5
    assert breaker.allows()  # the trial call
    assert not breaker.allows()  # only one at a time
    breaker.failed()  # it failed: open again for another 5 s
    clock.s = 9.9
    assert not breaker.allows()
    clock.s = 10
    assert breaker.allows()
    breaker.succeeded()
    assert breaker.allows() and breaker.allows()


def test_a_call_the_client_spoiled_frees_the_trial_without_deciding():
    clock = Clock()
    breaker = Breaker(failures=1, open_s=5, clock=clock)
    breaker.failed()
    clock.s = 5
    assert breaker.allows()
    breaker.released()
    assert breaker.allows()

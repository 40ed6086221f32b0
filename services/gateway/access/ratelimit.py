"""Token buckets, one per API key: a key may burst up to `capacity` calls, then `rate` a second.
Pure: the caller passes the clock."""

import math
from dataclasses import dataclass


@dataclass
class Bucket:
    rate: float  # tokens added per second
    capacity: float
    tokens: float
    at: float  # when `tokens` was counted

    def take(self, now: float) -> float:
        """Takes one token; returns 0 when there was one, else the seconds until there is."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Limiter:
    """The buckets of the keys seen; a key's bucket is made at its first call (only keys that
    authenticated get one, so their number is bounded by the keys that exist)."""

    def __init__(self, burst_s: float):
        self.burst_s = burst_s
        self.buckets: dict[str, Bucket] = {}

    def wait_s(self, key_id: str, rate: float, now: float) -> int:
        """0 when the call may go; otherwise whole seconds to wait (for Retry-After)."""
        bucket = self.buckets.get(key_id)
        capacity = max(1.0, rate * self.burst_s)
        if bucket is None or bucket.rate != rate:  # new, or its roles changed
            bucket = self.buckets[key_id] = Bucket(rate, capacity, capacity, now)
        wait = bucket.take(now)
        return math.ceil(wait) if wait > 0 else 0

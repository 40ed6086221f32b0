"""Which version serves a request for a model's champion, by its traffic table (canary weights),
and which shadow versions get a copy of it. Pure.

A request with a routing key always lands on the same version while the table stays as it is
(its point on 0-100 is a hash of the model and the key), so one caller sees one version; one
without a key lands at random. Canary versions take their percents from 0 up, in table order;
the champion has the rest.
"""

import hashlib
from collections.abc import Callable

from services.common.contracts.models import Traffic


def point(model: str, key: str | None, draw: Callable[[], float]) -> float:
    """The request's point in [0, 100): the key's hash, or a random draw (`draw` in [0, 1))."""
    if key is None:
        return draw() * 100
    digest = hashlib.sha256(f"{model}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def canary_for(traffic: Traffic, at: float) -> int | None:
    """The canary version whose share holds the point; None: the champion serves it."""
    upper = 0.0
    for canary in traffic.canary:
        upper += canary.percent
        if at < upper:
            return canary.version
    return None


def shadows_for(traffic: Traffic, draw: Callable[[], float]) -> list[int]:
    """The shadow versions this request is copied to: each its percent of the requests, independently."""
    return [s.version for s in traffic.shadows if draw() * 100 < s.percent]

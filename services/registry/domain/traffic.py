"""A model's traffic table (services/common/contracts/models.py: Traffic): which versions serve
a share of the champion's requests (canaries) and which get copies of them (shadows). The rules
the registry holds a table to, over plain values; the record keeps the table (model.py) and
every replica of inference applies it.

- Every version named exists, and none is the champion: the champion serves what the canaries
  leave, and a version cannot shadow itself.
- A model needs a champion for a table that names a version: the table splits the champion's
  traffic. Clearing needs none.
- When the champion moves to a version the table names (a promotion, a manual move, a rollback),
  that version leaves the table in the same write: a canary made champion stops being a canary.
"""

from services.common.contracts.models import Traffic
from services.registry.domain.errors import Conflict, Unprocessable

SET = "traffic set"  # the history's reason when the caller gave none
CLEARED = "traffic cleared"


def check(name: str, traffic: Traffic, versions: set[int], champion: int | None) -> None:
    """Refuses a table the model cannot apply, saying which version and why."""
    if not traffic.versions:
        return
    if champion is None:
        raise Conflict(
            f"model {name!r} has no champion: a traffic table splits the champion's requests; "
            f"make a version champion first (PUT /api/models/{name}/aliases/champion)"
        )
    missing = sorted(traffic.versions - versions)
    if missing:
        have = f"versions 1 to {max(versions)}" if versions else "no versions yet"
        raise Unprocessable(f"model {name!r} has no version {_listed(missing)}; it has {have}")
    if champion in traffic.versions:
        raise Unprocessable(
            f"version {champion} is the champion of model {name!r}: it serves what the canaries leave and cannot be a "
            f"canary or shadow of itself; name other versions"
        )


def without(traffic: Traffic, version: int) -> Traffic:
    """The table without the version (the others keep their percents and order)."""
    return Traffic(
        canary=[c for c in traffic.canary if c.version != version],
        shadows=[s for s in traffic.shadows if s.version != version],
    )


def describe(traffic: Traffic) -> dict[str, object]:
    """The table as the history keeps it (details from and to)."""
    return traffic.model_dump(mode="json")


def champion_percent(traffic: Traffic) -> float:
    """What the champion serves of its own requests: what the canaries leave."""
    return round(100 - sum(c.percent for c in traffic.canary), 9)


def _listed(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)

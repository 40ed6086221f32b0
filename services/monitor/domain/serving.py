"""What the monitor keeps of the inference replicas' serving stats: one document per model
holding, per instance (one run of a replica), its latest counters per version and when it sent
them. Pure.

Counters are cumulative per instance, so the newest event of an instance replaces what was kept
of it and an older one changes nothing: events may come late, twice, or out of order. An
instance not heard from for the forget horizon (a replica gone), or the least recently heard
past the bound on instances, is folded into `retired`: its counters stay in the sums, so that
the sums only ever grow (a rollout subtracts the reading at its step's start from the latest),
and its id is remembered, so that a late event of it is not counted twice.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from services.common.contracts.monitoring import LATENCY_BOUNDS_MS, ServingCounters, VersionServing
from services.monitor.domain.rows import utc

RETIRED_IDS = 256
"""Ids of folded instances remembered per model (the oldest forgotten first): a late event of
one of them is ignored rather than counted again."""
REFRESH = timedelta(hours=1)
"""An instance's unchanged counters are written again (its `at` moved) at most this often."""


class InstanceServing(BaseModel):
    """One instance's latest counters of the model's versions, as its last event said."""

    started_at: datetime
    at: datetime
    versions: dict[int, ServingCounters] = Field(default_factory=dict)


class ServingDocument(BaseModel):
    model: str
    instances: dict[str, InstanceServing] = Field(default_factory=dict)
    retired: dict[int, ServingCounters] = Field(default_factory=dict)
    """Per version: the counters of every instance folded in."""
    retired_ids: dict[str, datetime] = Field(default_factory=dict)
    """The folded instances, with the `at` of what was kept of each."""


def latest(
    document: ServingDocument | None,
    model: str,
    instance: str,
    started_at: datetime,
    at: datetime,
    versions: dict[int, ServingCounters],
    now: datetime,
    forget: timedelta,
    max_instances: int,
) -> ServingDocument | None:
    """The document with an instance's counters as of `at`; None when there is nothing to write
    (an event older than the one kept, or the same counters kept less than REFRESH ago)."""
    document = document or ServingDocument(model=model)
    if instance in document.retired_ids:
        return None  # folded into the sums already: counting it again would count it twice
    kept = document.instances.get(instance)
    if kept is not None:
        if utc(at) <= utc(kept.at):
            return None
        # A version an event leaves out (past its bound) keeps what an earlier one said.
        versions = kept.versions | versions
        if versions == kept.versions and utc(at) - utc(kept.at) < REFRESH:
            return None
    document.instances[instance] = InstanceServing(started_at=started_at, at=at, versions=versions)
    _forget(document, utc(now) - forget, max_instances)
    return document


def _forget(document: ServingDocument, horizon: datetime, max_instances: int) -> None:
    by_age = sorted(document.instances, key=lambda i: utc(document.instances[i].at))
    gone = [i for i in by_age if utc(document.instances[i].at) < horizon]
    excess = len(document.instances) - len(gone) - max_instances
    gone += [i for i in by_age if i not in gone][: max(0, excess)]
    for instance in gone:
        folded = document.instances.pop(instance)
        for version, counters in folded.versions.items():
            document.retired[version] = document.retired.get(version, ServingCounters()).plus(counters)
        document.retired_ids[instance] = folded.at
    if len(document.retired_ids) > RETIRED_IDS:
        newest = sorted(document.retired_ids.items(), key=lambda kv: utc(kv[1]))[-RETIRED_IDS:]
        document.retired_ids = dict(newest)


def counters_of(versions: Iterable[VersionServing], bounds: list[float]) -> dict[str, dict[int, ServingCounters]]:
    """An event's counters by model and version; latency counts made with other bounds than the
    monitor's (a replica of another build) are left out: they cannot be summed with the others."""
    same = tuple(bounds) == LATENCY_BOUNDS_MS
    out: dict[str, dict[int, ServingCounters]] = {}
    for entry in versions:
        counters = ServingCounters.model_validate(entry.model_dump(exclude={"model", "version"}))
        if not same:
            counters.latency_counts = []
        out.setdefault(entry.model, {})[entry.version] = counters
    return out


def summed(document: ServingDocument | None, model: str) -> list[VersionServing]:
    """Each version's counters over the instances kept and those folded in, by version."""
    totals: dict[int, ServingCounters] = {}
    parts = [document.retired] if document else []
    parts += [i.versions for i in document.instances.values()] if document else []
    for versions in parts:
        for version, counters in versions.items():
            totals[version] = totals.get(version, ServingCounters()).plus(counters)
    return [VersionServing(model=model, version=v, **totals[v].model_dump()) for v in sorted(totals)]

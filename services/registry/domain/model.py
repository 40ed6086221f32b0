"""What the registry stores: one record per model (its versions in short, its aliases and their
latest moves, its promotion policy, its traffic table, the count of its history and the entries
and events not yet written out), changed only by compare-and-swap. Each version's full details (card, lineage) and
the pages of the history (domain/history.py) live under keys of their own, so the record stays
small."""

import re
from datetime import UTC, datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from services.common.contracts.models import ALIAS_NAME, Promotion, RegisterVersion, TaskName, Traffic
from services.common.contracts.rollouts import MAX_STEPS, RolloutStep
from services.common.events import (
    EventType,
    ModelAliasChanged,
    ModelHistoryRecorded,
    ModelTrafficChanged,
    ModelVersionRegistered,
)
from services.registry.domain import traffic as tables
from services.registry.domain.errors import BadInput, Missing
from services.registry.domain.history import ALIAS_MOVED, RECENT_MOVES, TRAFFIC_CHANGED, HistoryEntry
from services.registry.domain.rollout_state import RolloutState

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
METRIC = r"^[a-z0-9_]{1,64}$"

Reason = Literal["promotion", "api", "rollback"]
UNRECORDED: Final = "unknown"  # the actor of a move made before actors were recorded
ROLLBACK_DEPTH: Final = 1000  # earlier champions a rollback can return to, one after the other


def now() -> datetime:
    return datetime.now(UTC)


def check_alias(alias: str) -> None:
    if not re.match(ALIAS_NAME, alias):
        raise BadInput(
            f"{alias!r} is not a valid alias: use 1 to 63 lower-case letters, digits, '-' and '_', "
            f"starting with a letter or digit"
        )
    if alias.isdigit() or alias == "latest":
        # A version is named by its number wherever an alias is accepted.
        raise BadInput(f"{alias!r} cannot be an alias: it reads as a version; choose a name with a letter in it")


class PromotionPolicy(BaseModel):
    """How a newly registered version is promoted, and so who can change what a model serves.

    New versions come from training jobs, and training starts one for every committed version
    of a dataset whose training policy says auto_train (its default): whoever may commit data
    (an ingest key) starts them. This policy decides whether such a version may replace the
    champion: only with `auto`, which a model gets only by asking for it (PUT .../policy, the
    train role), so by default new data trains but does not change what is served. A version
    trained on rows labeled through feedback (which a predict key may send) stays challenger
    even then, unless `trained_on_feedback` says as_any."""

    mode: Literal["auto", "manual"] = Field(
        "manual",
        description="manual (the default): a new version becomes challenger and a person with the admin role "
        "moves champion; auto: it becomes champion when it scores at least as well as the champion on the "
        "primary metric (so new data committed by an ingest key can change the champion), challenger otherwise",
    )
    metric: str | None = Field(None, pattern=METRIC, description="default: accuracy or r2, by the model's task")
    first_champion: StrictBool = Field(
        True,
        description="with manual: a model that has never had a champion makes its first promoted version "
        "champion, so a new model serves at once (no champion is ever replaced so); false: that one too "
        "waits for a person",
    )
    trained_on_feedback: Literal["challenger", "as_any"] = Field(
        "challenger",
        description="challenger (the default): a version trained on rows labeled through feedback "
        "(lineage.feedback_rows > 0, a monitoring retrain) becomes challenger whatever the mode, even as a "
        "model's first version: feedback may be sent with a predict key, so it alone never replaces what is "
        "served, and a person with the admin role moves champion; as_any: it is promoted as any version",
    )

    rollout: list[RolloutStep] | None = Field(
        None,
        max_length=MAX_STEPS,
        description="a rollout plan (as POST .../rollouts takes): a version this policy would make champion in "
        "place of another becomes challenger instead, and a rollout with this plan brings it to champion on live "
        "evidence; None (the default): promoted at once",
    )


class VersionRef(BaseModel):
    """A version as its model record keeps it."""

    version: int
    job_id: str
    details_key: str
    dataset: str
    dataset_version: int
    estimator: str
    metrics: dict[str, float]
    artifact_sha256: str
    created_at: datetime
    promotion: Promotion | None = None  # decided once, after registration


class AliasChange(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    alias: str
    from_version: int | None = Field(alias="from")
    to_version: int | None = Field(alias="to")
    reason: Reason
    at: datetime
    actor: str | None = None  # None: moved before actors were recorded


class PendingEvent(BaseModel):
    """An event of a committed change, kept until it is published (see outbox.py)."""

    id: str
    type: EventType
    subject: str
    payload: dict[str, Any]


class ModelRecord(BaseModel):
    name: str
    task: TaskName | None = None  # set by the first version
    created_at: datetime = Field(default_factory=now)
    policy: PromotionPolicy = Field(default_factory=PromotionPolicy)
    versions: list[VersionRef] = Field(default_factory=list)
    aliases: dict[str, int] = Field(default_factory=dict)
    recent: list[AliasChange] = Field(default_factory=list)  # the last RECENT_MOVES alias moves, oldest first
    champions: list[int] = Field(default_factory=list)  # what rollback returns to: earlier champions, latest last
    had_champion: bool = False  # champion has pointed at a version at some time (removed since or not)
    traffic: Traffic = Field(default_factory=Traffic)  # canaries and shadows of the champion's requests
    traffic_at: datetime | None = None  # when the traffic table last changed
    traffic_by: str | None = None  # who changed it last
    history_count: int = 0  # entries in the model's history: the seq of its newest
    unfiled: list[HistoryEntry] = Field(default_factory=list)  # entries not yet written to their pages
    outbox: list[PendingEvent] = Field(default_factory=list)
    rollouts: list[RolloutState] = Field(default_factory=list)  # the running one and the latest finished
    rollouts_started: int = 0  # numbers the next rollout (r1, r2, ...)

    @model_validator(mode="before")
    @classmethod
    def _history_moved_out(cls, data: Any) -> Any:
        """A record stored before the history left it keeps every alias move in `history`: read
        as the first entries of the history (their actor unrecorded), unfiled, so that the outbox
        relay writes them to their pages and the record is stored without them."""
        if not isinstance(data, dict) or "history" not in data:
            return data
        data = dict(data)
        moves = [AliasChange.model_validate(c) for c in data.pop("history") or []]
        if "history_count" in data:  # written by both: the new fields are the truth
            return data
        replayed = cls(name=data.get("name", ""))
        for change in moves:  # no events: each was announced when it was made
            replayed._moved(change)
            replayed.note(ALIAS_MOVED, UNRECORDED, "", change.at, _move_details(change), announce=False)
        kept = ("recent", "champions", "had_champion", "history_count", "unfiled")
        return data | replayed.model_dump(include=set(kept))

    def version(self, number: int) -> VersionRef | None:
        return next((v for v in self.versions if v.version == number), None)

    def version_of_job(self, job_id: str) -> VersionRef | None:
        return next((v for v in self.versions if v.job_id == job_id), None)

    def next_version(self) -> int:
        """Versions are never deleted, so the numbers have no gaps."""
        return self.versions[-1].version + 1 if self.versions else 1

    def add_version(self, request: RegisterVersion, details_key: str, at: datetime) -> VersionRef:
        lineage = request.lineage
        ref = VersionRef(
            version=self.next_version(),
            job_id=lineage.job_id,
            details_key=details_key,
            dataset=lineage.dataset,
            dataset_version=lineage.dataset_version,
            estimator=lineage.estimator,
            metrics=request.metrics,
            artifact_sha256=request.artifact.sha256,
            created_at=at,
        )
        self.task = self.task or request.card.task
        self.versions.append(ref)
        payload = ModelVersionRegistered(
            model=self.name,
            version=ref.version,
            dataset=ref.dataset,
            dataset_version=ref.dataset_version,
            estimator=ref.estimator,
            job_id=ref.job_id,
            artifact_sha256=ref.artifact_sha256,
            metrics=ref.metrics,
        )
        self._pending(
            EventType.MODEL_VERSION_REGISTERED,
            f"{self.name}-v{ref.version}-{ref.artifact_sha256[:12]}",
            f"{self.name}/v{ref.version}",
            payload,
        )
        return ref

    def move_alias(
        self,
        alias: str,
        to: int | None,
        cause: Reason,
        at: datetime,
        actor: str,
        why: str = "",
        details: dict[str, Any] | None = None,
    ) -> AliasChange | None:
        """Points the alias at a version (None: removes it), recorded in the history (by `actor`,
        for `why`, with `details` beside the move's own) and announced. Nothing happens, and None
        is returned, when it points there already."""
        before = self.aliases.get(alias)
        if before == to:
            return None
        if to is None:
            del self.aliases[alias]
        else:
            self.aliases[alias] = to
        change = AliasChange(alias=alias, from_version=before, to_version=to, reason=cause, at=at, actor=actor)
        self._moved(change)
        entry = self.note(ALIAS_MOVED, actor, why, at, {**(details or {}), **_move_details(change)}, announce=False)
        payload = ModelAliasChanged(model=self.name, alias=alias, from_version=before, to_version=to, reason=cause)
        # The history only grows, so the move's place in it is its stable id.
        self._pending(EventType.MODEL_ALIAS_CHANGED, f"{self.name}-alias-{entry.seq}", f"{self.name}/{alias}", payload)
        self._announce(entry)
        if alias == CHAMPION and to is not None and to in self.traffic.versions:
            # In the same write: a canary made champion stops being a canary (it would split its
            # own traffic), a shadow stops shadowing itself.
            why = f"version {to} became champion ({cause}): it leaves the traffic table"
            self.set_traffic(tables.without(self.traffic, to), at, actor, why)
        return change

    def set_traffic(self, traffic: Traffic, at: datetime, actor: str, why: str) -> bool:
        """Replaces the traffic table once the rules of domain/traffic.py allow it, recorded in the
        history (by `actor`, for `why`, details from and to) and announced. False, and nothing
        recorded, when the model has this table already."""
        tables.check(self.name, traffic, {v.version for v in self.versions}, self.aliases.get(CHAMPION))
        if traffic == self.traffic:
            return False
        details = {"from": tables.describe(self.traffic), "to": tables.describe(traffic)}
        self.traffic, self.traffic_at, self.traffic_by = traffic, at, actor
        entry = self.note(TRAFFIC_CHANGED, actor, why, at, details, announce=False)
        payload = ModelTrafficChanged(model=self.name, traffic=traffic, reason=why)
        # As an alias move's: the entry's place in the history is the change's stable id.
        self._pending(
            EventType.MODEL_TRAFFIC_CHANGED, f"{self.name}-traffic-{entry.seq}", f"{self.name}/traffic", payload
        )
        self._announce(entry)
        return True

    def _moved(self, change: AliasChange) -> None:
        """Keeps what later reads of the record need from a move: the latest moves, and the
        earlier champions rollback returns to. Rollbacks undo moves like an undo stack: rolling
        back twice goes two champions back, not back and forth."""
        self.recent = [*self.recent, change][-RECENT_MOVES:]
        if change.alias != CHAMPION:
            return
        self.had_champion = True
        if change.reason == "rollback":
            if self.champions:
                self.champions.pop()
        elif change.from_version is not None:
            self.champions = [*self.champions, change.from_version][-ROLLBACK_DEPTH:]

    def note(
        self, action: str, actor: str, why: str, at: datetime, details: dict[str, Any], announce: bool = True
    ) -> HistoryEntry:
        """Appends an entry to the model's history, in the same write as the change it
        describes: its seq follows the last one, it waits in `unfiled` until the outbox relay
        writes it to its page, and its event waits in the outbox (unless announce is False: the
        caller announces it after events of its own)."""
        self.history_count += 1
        entry = HistoryEntry(seq=self.history_count, at=at, actor=actor, action=action, reason=why, details=details)
        self.unfiled.append(entry)
        if announce:
            self._announce(entry)
        return entry

    def _announce(self, entry: HistoryEntry) -> None:
        payload = ModelHistoryRecorded(model=self.name, **entry.model_dump())
        self._pending(EventType.MODEL_HISTORY_RECORDED, f"{self.name}-history-{entry.seq}", self.name, payload)

    def rollback_target(self) -> int | None:
        """The version champion held before its current one (None: it never held another)."""
        return self.champions[-1] if self.champions else None

    def ever_had_champion(self) -> bool:
        return self.had_champion

    def aliases_of(self, number: int) -> list[str]:
        return sorted(a for a, v in self.aliases.items() if v == number)

    def _pending(self, event_type: EventType, event_id: str, subject: str, payload: BaseModel) -> None:
        self.outbox.append(
            PendingEvent(id=event_id, type=event_type, subject=subject, payload=payload.model_dump(mode="json"))
        )


def _move_details(change: AliasChange) -> dict[str, Any]:
    return {"alias": change.alias, "from": change.from_version, "to": change.to_version, "cause": change.reason}


def exists(record: ModelRecord | None, name: str) -> ModelRecord:
    if record is None:
        raise Missing(f"model {name!r} does not exist; a training job registers its first version")
    return record


def numbered(record: ModelRecord, number: int) -> VersionRef:
    found = record.version(number)
    if found is None:
        have = f"versions 1 to {record.versions[-1].version}" if record.versions else "no versions yet"
        raise Missing(f"model {record.name!r} has no version {number}; it has {have}")
    return found


def resolve(record: ModelRecord, ref: str) -> VersionRef:
    if ref.isdigit():
        return numbered(record, int(ref))
    if ref == "latest":
        if not record.versions:
            raise Missing(f"model {record.name!r} has no versions yet")
        return record.versions[-1]
    number = record.aliases.get(ref)
    if number is None:
        raise Missing(f"model {record.name!r} has no alias {ref!r}; its aliases: {sorted(record.aliases) or 'none'}")
    return numbered(record, number)

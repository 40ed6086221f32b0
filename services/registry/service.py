"""The registry's use cases. Each gets its dependencies (repository, publisher, settings) from
the RegistryService it is a method of; none knows HTTP or Dapr."""

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from services.common.contracts.models import (
    Artifact,
    Promotion,
    PromotionRequest,
    Registered,
    RegisterVersion,
    Traffic,
)
from services.common.contracts.rollouts import StartRollout
from services.common.ports import ConcurrencyConflict, EventPublisher, NotFound, SidecarUnavailable
from services.common.state import Busy
from services.registry import history, outbox
from services.registry.domain import rollout_state as states
from services.registry.domain import traffic as tables
from services.registry.domain import views
from services.registry.domain.errors import BadInput, Conflict, Corrupt, Missing
from services.registry.domain.history import POLICY_CHANGED, HistoryEntry, ModelHistory, Note
from services.registry.domain.model import (
    CHALLENGER,
    CHAMPION,
    ModelRecord,
    PromotionPolicy,
    Reason,
    check_alias,
    exists,
    now,
    numbered,
    resolve,
)
from services.registry.domain.promotion import decide, explain, held_by_feedback
from services.registry.domain.rollout_start import begin
from services.registry.domain.rollout_state import RolloutState
from services.registry.domain.views import AliasMoved, ModelInfo, ModelList, ModelVersion, TrafficView
from services.registry.metrics import RegistryMetrics
from services.registry.repository import ModelRepository
from services.registry.settings import Settings

log = logging.getLogger(__name__)


class RegistryService:
    def __init__(
        self,
        repo: ModelRepository,
        publisher: EventPublisher,
        settings: Settings,
        metrics: RegistryMetrics | None = None,
    ):
        self.repo, self.publisher, self.settings = repo, publisher, settings
        self.metrics = metrics or RegistryMetrics()
        self.on_rollout: Callable[[str, RolloutState], Awaitable[None]] | None = None
        """Starts a rollout's workflow (Rollouts sets it): for one a promotion began."""

    # reads

    async def record(self, name: str) -> ModelRecord:
        return exists(await self.repo.model(name), name)

    async def models(self, offset: int = 0, limit: int = 100) -> ModelList:
        """One page of the models, in order of name."""
        most = self.settings.max_page_models
        if offset < 0 or not 1 <= limit <= most:
            raise BadInput(f"offset must be >= 0 and limit between 1 and {most}")
        names = await self.repo.names()
        records = await asyncio.gather(*(self.repo.model(n) for n in names[offset : offset + limit]))
        return ModelList(
            models=[views.summary(r) for r in records if r is not None], total=len(names), offset=offset, limit=limit
        )

    async def info(self, name: str) -> ModelInfo:
        return views.info(await self.record(name))

    async def traffic(self, name: str) -> TrafficView:
        return views.traffic(await self.record(name))

    async def history(self, name: str, before: int | None = None, limit: int = 50) -> ModelHistory:
        """One page of the model's history, newest first: up to `limit` entries older than
        `before` (None: from the newest)."""
        most = self.settings.max_page_history
        if not 1 <= limit <= most or (before is not None and before < 1):
            raise BadInput(f"limit must be between 1 and {most}, and before at least 1")
        return await history.read(self.repo, await self.record(name), before, limit)

    async def version(self, name: str, ref: str) -> ModelVersion:
        """`ref`: a version number, `latest`, or an alias."""
        record = await self.record(name)
        found = resolve(record, ref)
        details = await self.repo.details(found.details_key)
        if details is None:
            log.error("model %s version %s: details %r missing from the state store", name, ref, found.details_key)
            raise Corrupt(f"the details of model {name!r} version {found.version} were lost from the state store")
        return views.version(record, found, details)

    async def artifact(self, name: str, ref: str) -> tuple[ModelVersion, bytes]:
        """The version's skops file, only if it is the file that was registered."""
        version = await self.version(name, ref)
        what = f"the artifact of model {name!r} version {version.version}"
        return version, await self._file(what, version.artifact)

    async def onnx(self, name: str, ref: str) -> tuple[ModelVersion, bytes]:
        """The version's ONNX file, only if it is the file that was registered; Missing, saying
        why, when the version has none."""
        version = await self.version(name, ref)
        compiled = version.onnx
        if compiled is None or compiled.artifact is None:
            why = (
                "it was registered before models were compiled"
                if compiled is None
                else compiled.check.reason or "its training job stored none"
            )
            raise Missing(
                f"model {name!r} version {version.version} has no ONNX file: {why} "
                f"(its skops file is at .../versions/{version.version}/artifact)"
            )
        return version, await self._file(
            f"the ONNX file of model {name!r} version {version.version}", compiled.artifact
        )

    async def _file(self, what: str, artifact: Artifact) -> bytes:
        """A model file from the blob store, once its sha256 is the one registered."""
        try:
            data = await self.repo.artifact(artifact.key)
        except NotFound:
            log.error("%s (%s) is missing from the blob store", what, artifact.key)
            raise Corrupt(f"{what} is missing from the blob store; it was lost and cannot be served") from None
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
        if digest != artifact.sha256:
            log.error("%s (%s) has sha256 %s, registered %s", what, artifact.key, digest, artifact.sha256)
            raise Corrupt(
                f"{what} is not the file that was registered (its sha256 differs); it was altered or damaged "
                f"in the blob store and is not served"
            )
        return data

    # writes

    async def change(self, name: str, change: Callable[[ModelRecord | None], ModelRecord | None]) -> ModelRecord:
        """One compare-and-swap of the model record, then its events go out."""
        try:
            record = await self.repo.update(name, change)
        except Busy:
            raise Conflict(
                f"model {name!r} is busy: other changes to it won the race each time this one tried; send it again"
            ) from None
        if record is None:  # changes given None either create the record or raise Missing
            raise RuntimeError(f"a change to model {name!r} left no record")
        await self.repo.index(name)
        await self._announce(name)
        return record

    async def register(self, name: str, request: RegisterVersion) -> Registered:
        """Gives the job's model a new version, once: the same job registering again gets the
        version it has."""
        job = request.lineage.job_id
        record = await self.repo.model(name)
        known = record.version_of_job(job) if record is not None else None
        if known is not None:
            if known.artifact_sha256 != request.artifact.sha256:
                log.warning(
                    "job %s registered model %s again with another artifact; it keeps version %s",
                    job,
                    name,
                    known.version,
                )
            await self.repo.index(name)  # in case the first try failed between the two writes
            return Registered(model=name, version=known.version, new=False)
        key = self.repo.details_key(name, request)
        # Stored before the record points at it: no version is without its details.
        await self.repo.save_details(key, request)
        added = False

        def add(current: ModelRecord | None) -> ModelRecord:
            nonlocal added
            current = current or ModelRecord(name=name)
            added = current.version_of_job(job) is None
            if not added:
                return current  # a retry of this job got there first
            if current.task not in (None, request.card.task):
                raise Conflict(
                    f"model {name!r} is a {current.task} model; job {job!r} trained for {request.card.task}: "
                    f"register it under another model name"
                )
            current.add_version(request, key, now())
            return current

        try:
            record = await self.change(name, add)
        except Exception:
            await self._forget_details(name, key)
            raise
        ref = record.version_of_job(job)
        assert ref is not None  # add() leaves a version of this job
        if added:
            self.metrics.versions.inc()
        return Registered(model=name, version=ref.version, new=added)

    async def _forget_details(self, name: str, key: str) -> None:
        """Deletes details stored for a registration that made no version, unless a version
        points at them after all (the same job, registering at the same time, got in)."""
        record = await self.repo.model(name)
        if record is None or all(v.details_key != key for v in record.versions):
            await self.repo.delete_details(key)

    async def promote(self, name: str, number: int, request: PromotionRequest, actor: str) -> Promotion:
        """Applies the model's promotion policy to a new version, once. The alias it moves is
        recorded as moved by `actor` (training, which asks), for the reason the policy gives."""
        feedback_rows = await self._feedback_rows(name, number)
        decision: Promotion | None = None
        fresh, moved, refused = False, False, False  # as the last try of the change left them

        def apply(record: ModelRecord | None) -> ModelRecord:
            nonlocal decision, fresh, moved, refused
            fresh, moved, refused = False, False, False
            record = exists(record, name)
            ref = numbered(record, number)
            if ref.promotion is not None:
                decision = ref.promotion  # decided before: nothing moves again
                return record
            champion = record.aliases.get(CHAMPION)
            held = held_by_feedback(record.policy, feedback_rows)  # then which champion was scored does not matter
            if record.policy.mode == "auto" and not held and champion not in (number, request.champion_version):
                refused = True
                raise Conflict(
                    f"model {name!r} has {_describe(champion)} as champion now, not "
                    f"{_describe(request.champion_version)}: score version {number} against it and ask again"
                )
            assert record.task is not None  # set with the first version
            first = not record.ever_had_champion()
            decision = decide(name, number, record.policy, record.task, request, now(), first, feedback_rows)
            why = explain(decision, first, record.policy, feedback_rows)
            if decision.alias == CHAMPION and champion is not None and record.policy.rollout:
                decision, why = self._roll_out(record, decision, why, actor)
            ref.promotion = decision
            fresh = True
            details = {"job_id": ref.job_id, **decision.model_dump(mode="json", exclude={"model", "decided_at"})}
            if feedback_rows:
                details["feedback_rows"] = feedback_rows
            change = record.move_alias(decision.alias, number, "promotion", decision.decided_at, actor, why, details)
            moved = change is not None
            return record

        try:
            await self.change(name, apply)
        except Conflict:
            if refused:
                self.metrics.promotions.labels("conflict").inc()
            raise
        assert decision is not None
        if fresh:
            self.metrics.promotions.labels(decision.alias).inc()
            await self._rollout_started(name)
        if moved:
            self.metrics.moved(decision.alias, "promotion")
        return decision

    def _roll_out(self, record: ModelRecord, decision: Promotion, why: str, actor: str) -> tuple[Promotion, str]:
        """The policy says to roll a winner out rather than promote it: it becomes challenger and a
        rollout by the policy's plan starts, in the same write (its workflow starts after it)."""
        assert record.policy.rollout is not None
        request = StartRollout(
            candidate=decision.version, plan=record.policy.rollout, reason=f"promotion policy: {why}"
        )
        try:
            rollout = begin(record, request, actor, decision.decided_at)
        except Conflict as refused:
            return decision.model_copy(update={"alias": CHALLENGER}), f"{why}; no rollout: {refused}"
        return decision.model_copy(update={"alias": CHALLENGER}), f"{why}; rollout {rollout.id} brings it to champion"

    async def _rollout_started(self, name: str) -> None:
        """Starts the workflow of a rollout a promotion began (else the background relay does)."""
        if self.on_rollout is None:
            return
        rollout = states.active((await self.record(name)).rollouts)
        if rollout is not None:
            await self.on_rollout(name, rollout)

    async def _feedback_rows(self, name: str, number: int) -> int:
        """The rows of the version's training data labeled through feedback, as its lineage
        (in its details, which never change once registered) says; 0 once it has its decision,
        which is not taken again. A version whose details are lost is not promoted: what it was
        trained on is not known."""
        ref = numbered(await self.record(name), number)
        if ref.promotion is not None:
            return 0
        details = await self.repo.details(ref.details_key)
        if details is None:
            log.error("model %s version %s: details %r missing from the state store", name, number, ref.details_key)
            raise Corrupt(f"the details of model {name!r} version {number} were lost from the state store")
        return details.lineage.feedback_rows

    async def set_alias(self, name: str, alias: str, number: int, actor: str, why: str = "") -> AliasMoved:
        check_alias(alias)
        return await self._move(name, alias, lambda record: numbered(record, number).version, "api", actor, why)

    async def delete_alias(self, name: str, alias: str, actor: str, why: str = "") -> AliasMoved:
        check_alias(alias)

        def target(record: ModelRecord) -> None:
            if alias not in record.aliases:
                raise Missing(f"model {name!r} has no alias {alias!r}; its aliases: {sorted(record.aliases) or 'none'}")

        return await self._move(name, alias, target, "api", actor, why)

    async def rollback(self, name: str, actor: str, why: str = "") -> AliasMoved:
        def target(record: ModelRecord) -> int:
            earlier = record.rollback_target()
            if earlier is None:
                raise Conflict(f"model {name!r} has no earlier champion to roll back to")
            return earlier

        return await self._move(name, CHAMPION, target, "rollback", actor, why)

    async def _move(
        self,
        name: str,
        alias: str,
        target: Callable[[ModelRecord], int | None],
        reason: Reason,
        actor: str,
        why: str,
    ) -> AliasMoved:
        moved = AliasMoved(model=name, alias=alias, version=None, previous=None)
        changed = False

        def move(record: ModelRecord | None) -> ModelRecord:
            nonlocal changed
            record = exists(record, name)
            to = target(record)
            moved.previous, moved.version = record.aliases.get(alias), to
            changed = record.move_alias(alias, to, reason, now(), actor, why) is not None
            return record

        await self.change(name, move)
        if changed:
            self.metrics.moved(alias, reason)
        return moved

    async def set_policy(self, name: str, policy: PromotionPolicy, actor: str, why: str = "") -> PromotionPolicy:
        """Also for a model without versions yet: its first version is then promoted by it. A
        change is recorded in the history; setting the policy a model has records nothing."""

        def set_it(record: ModelRecord | None) -> ModelRecord:
            record = record or ModelRecord(name=name)
            if record.policy != policy:
                details = {"from": record.policy.model_dump(mode="json"), "to": policy.model_dump(mode="json")}
                record.policy = policy
                record.note(POLICY_CHANGED, actor, why, now(), details)
            return record

        return (await self.change(name, set_it)).policy

    async def set_traffic(self, name: str, traffic: Traffic, actor: str, why: str = "") -> TrafficView:
        """Sets the model's traffic table (the empty one clears it), recorded in the history by
        `actor` for `why` (else "traffic set" or "traffic cleared") and announced to every
        inference replica. Setting the table a model has records nothing."""
        reason = why or (tables.SET if traffic.versions else tables.CLEARED)

        def set_it(record: ModelRecord | None) -> ModelRecord:
            record = exists(record, name)
            record.set_traffic(traffic, now(), actor, reason)
            return record

        return views.traffic(await self.change(name, set_it))

    async def clear_traffic(self, name: str, actor: str, why: str = "") -> TrafficView:
        return await self.set_traffic(name, Traffic(), actor, why)

    async def note(self, name: str, note: Note, caller: str) -> HistoryEntry:
        """Records what another service (the monitor) did to a model. Its actor is the caller,
        or whom the caller says it acts for (the key that asked the monitor), with the caller
        named in the details."""
        actor = note.actor or caller
        details = note.details if note.actor is None else {**note.details, "via": caller}
        entry: HistoryEntry | None = None

        def add(record: ModelRecord | None) -> ModelRecord:
            nonlocal entry
            record = exists(record, name)
            entry = record.note(note.action, actor, note.reason, now(), details)
            return record

        await self.change(name, add)
        assert entry is not None
        return entry

    # events: at least once, through the model record's outbox (see outbox.py)

    async def _announce(self, name: str) -> None:
        try:
            await self.flush_outbox(name)
        except (SidecarUnavailable, ConcurrencyConflict) as exc:  # the bus or the store away: expected
            log.warning("events of model %s not published yet, will retry: %s", name, exc)
        except Exception as exc:  # the change is committed; the background job publishes its events later
            log.warning("events of model %s not published yet, will retry: %s", name, exc, exc_info=True)

    async def flush_outbox(self, name: str) -> int:
        return await outbox.flush(self.repo, self.publisher, name)

    async def flush_all(self) -> int:
        return await outbox.flush_all(self.repo, self.publisher)


def _describe(version: int | None) -> str:
    return f"version {version}" if version is not None else "no version"

"""Training's use cases: submit a job (from the API or a committed dataset version), cancel it,
read jobs, keep per-dataset policies. The workflow is the job record; what is kept here beside
it is what the engine cannot answer: which jobs exist, for which dataset, which attempt of a
request is the latest, and whether a job's fit has a worker yet."""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.clients import Absent, CallError, IngestionClient
from services.common.contracts import Manifest
from services.common.contracts.jobs import JobRequest
from services.common.errors import ClientError, Missing
from services.common.events import DatasetVersionCommitted
from services.common.ports import SidecarUnavailable, StateStore, WorkflowRun, Workflows
from services.common.state import Busy, Documents
from services.training.domain import estimators
from services.training.domain.jobs import (
    Attempts,
    FitStarted,
    Job,
    JobIds,
    JobList,
    JobRecord,
    JobSpec,
    Policy,
    attempt_id,
    job_id,
)
from services.training.limits import Admission, TooManyJobs
from services.training.metrics import TrainingMetrics
from services.training.settings import Settings
from services.training.workflow import WORKFLOW

log = logging.getLogger(__name__)


CANCELED = "CANCELED"  # the API's word for a workflow the engine calls TERMINATED
RETRIED = ("FAILED", CANCELED)  # a request whose latest job ended so starts a new attempt
FINISHED = ("COMPLETED", *RETRIED)
CANCEL_WAIT_S = 3.0  # how long a cancel waits for the engine to report the workflow terminated


class Conflict(ClientError):
    status = 409


class JobService:
    def __init__(
        self,
        state: StateStore,
        ingestion: IngestionClient,
        workflows: Workflows,
        settings: Settings,
        stop: Callable[[str], bool] = lambda job: False,
        metrics: TrainingMetrics | None = None,
    ):
        """`stop` stops a job's step that this process computes (Compute.cancel)."""
        self.ingestion, self.workflows, self.settings, self.stop = ingestion, workflows, settings, stop
        self.metrics = metrics or TrainingMetrics()
        self.records = Documents(state, JobRecord)
        self.ids = Documents(state, JobIds)
        self.policies = Documents(state, Policy)
        self.attempts = Documents(state, Attempts)
        self.fits = Documents(state, FitStarted)
        self.admission = Admission(state, self._finished, settings, refused=self.metrics.refused.inc)

    # submitting

    async def submit(self, request: JobRequest, new_attempt: bool = True, manifest: Manifest | None = None) -> Job:
        """Schedules the job's workflow, once: the job id is derived from what it trains on and
        how, so a repeated request or a redelivered event finds the same job, unless that job
        failed or was canceled: then (with `new_attempt`) the request starts a new attempt, a
        job of its own. Refused with 429 when too many jobs are waiting or running. `manifest`:
        the version's, when the caller has read it already."""
        manifest = manifest or await self._manifest(request.dataset, request.version)
        policy = await self.policy(request.dataset)
        task = manifest.schema_.task
        estimator = request.estimator or policy.estimator or estimators.default_for(task)
        bounds = self.settings.bounds()
        given = request.params if request.params is not None else policy.params
        params = estimators.validate(task, estimator, given, bounds)
        spec = JobSpec(
            job_id="",
            dataset=request.dataset,
            version=manifest.version,
            schema_=manifest.schema_.model_dump(mode="json"),
            schema_hash=manifest.schema_hash,
            task=task,
            estimator=estimator,
            params=params,
            model=request.model or request.dataset,
            seed=self.settings.seed,
            bounds=bounds,
            feedback_rows=manifest.origin.feedback_rows if manifest.origin is not None else 0,
        )
        attempt = await self._attempt(job_id(spec), new_attempt)
        spec.job_id = attempt_id(job_id(spec), attempt)
        found = await self.records.get(_record_key(spec.job_id))
        if found is not None and await self._scheduled(spec.job_id):
            return await self.job(spec.job_id)
        now = datetime.now(UTC)
        spec.deadline = now + timedelta(seconds=self.settings.job_timeout_s)
        record = JobRecord(
            id=spec.job_id,
            dataset=spec.dataset,
            version=spec.version,
            estimator=estimator,
            params=params,
            model=spec.model,
            created_at=now,
            attempt=attempt,
        )
        await self.admission.admit(spec.job_id, spec.dataset)
        try:
            # Recorded before it is scheduled, so that no workflow runs that the job list does not show.
            await self.records.update(_record_key(spec.job_id), lambda found: found or record)
            await self.ids.update(_ids_key(spec.dataset), lambda ids: _with(ids, spec.job_id))
            await self.ids.update(_ids_key(None), lambda ids: _with(ids, spec.job_id))
            if await self.workflows.schedule(WORKFLOW, spec.job_id, spec.model_dump(mode="json")):
                self.metrics.submitted.inc()
                log.info("job %s scheduled: %s v%s with %s", spec.job_id, spec.dataset, spec.version, estimator)
        except Exception:
            await self.admission.release(spec.job_id)  # it does not wait for anything
            raise
        return await self.job(spec.job_id)

    async def _attempt(self, base: str, new_attempt: bool) -> int:
        """The attempt a request gets: its latest one, or the next when that one failed or was
        canceled. Two requests racing for the next agree on it (compare-and-swap)."""
        latest = (await self.attempts.get(_attempts_key(base)) or Attempts()).latest
        if not new_attempt or await self.records.get(_record_key(attempt_id(base, latest))) is None:
            return latest
        if _status(await self.workflows.run(attempt_id(base, latest))) not in RETRIED:
            return latest

        def next_one(found: Attempts | None) -> Attempts:
            found = found or Attempts()
            return Attempts(latest=latest + 1) if found.latest == latest else found

        stored = await self.attempts.update(_attempts_key(base), next_one)
        return stored.latest if stored else latest + 1

    async def _scheduled(self, job: str) -> bool:
        return await self.workflows.run(job) is not None

    async def _finished(self, job: str) -> bool:
        return _status(await self.workflows.run(job)) in FINISHED

    async def on_version_committed(self, _attributes: dict[str, Any], event: DatasetVersionCommitted) -> None:
        """Trains a newly committed version when the dataset's policy says so, unless a
        monitoring retrain made it (its manifest has an origin): the monitor submits that job
        itself, naming the model, estimator and parameters of the model it retrains, which the
        dataset's policy may not. A version that cannot be trained (its policy names parameters
        it refuses, say) is logged, not retried: no retry would change the answer. Too many jobs
        waiting is retried, later. A delivery again finds the job of the first, whatever became
        of it."""
        policy = await self.policy(event.dataset)
        log.info(
            "dataset %s v%s committed; auto-train %s",
            event.dataset,
            event.version,
            "on" if policy.auto_train else "off",
        )
        if not policy.auto_train:
            return
        try:
            manifest = await self._manifest(event.dataset, event.version)
            if manifest.origin is not None:
                log.info(
                    "not auto-training %s v%s: retrain %s of model %s made it; its job is started by the monitor, "
                    "which names the model, estimator and parameters",
                    event.dataset,
                    event.version,
                    manifest.origin.retrain_id,
                    manifest.origin.model,
                )
                return
            request = JobRequest(dataset=event.dataset, version=event.version)
            await self.submit(request, new_attempt=False, manifest=manifest)
        except TooManyJobs as exc:
            raise Busy(f"not training {event.dataset} v{event.version} yet: {exc}") from exc
        except ClientError as exc:
            log.warning("not training %s v%s: %s", event.dataset, event.version, exc)

    async def _manifest(self, dataset: str, version: int | str) -> Manifest:
        try:
            return await self.ingestion.manifest(dataset, version)
        except Absent:
            raise Missing(f"dataset {dataset!r} has no version {version}") from None
        except CallError as e:
            raise SidecarUnavailable(f"reading {e} from ingestion", "the ingestion service cannot answer") from None

    # canceling

    async def cancel(self, job_id_: str) -> Job:
        """Ends the job: its workflow is terminated (the API shows CANCELED), then the worker
        computing its step is killed. The engine cannot stop a running activity; the step stops
        here if this process runs it, else where the activity watches its workflow
        (activities.py). Canceling a canceled job again changes nothing."""
        job = await self.job(job_id_)
        if job.status in ("COMPLETED", "FAILED"):
            raise Conflict(f"job {job_id_} has {job.status.lower()} already; there is nothing to cancel")
        if job.status != CANCELED:
            if not await self.workflows.terminate(job_id_, f"canceled at stage {job.stage or 'pending'}"):
                raise Conflict(f"job {job_id_} is not scheduled yet; cancel it again in a moment", {"retry-after": "1"})
            self.metrics.ended(CANCELED)  # the workflow function does not run again to count it
            job = await self._until_canceled(job_id_)
        if self.stop(job_id_):
            log.info("job %s canceled: its step was stopped", job_id_)
        await self.admission.release(job_id_)
        return job

    async def _until_canceled(self, job_id_: str) -> Job:
        """The job once the engine reports it terminated (it applies a terminate a moment
        later), or as it is after CANCEL_WAIT_S: the kill does not wait for more, and the
        workflow ends either way."""
        for _ in range(int(CANCEL_WAIT_S / 0.05)):
            job = await self.job(job_id_)
            if job.status == CANCELED:
                return job
            await asyncio.sleep(0.05)
        return await self.job(job_id_)

    # reading

    async def job(self, job_id_: str) -> Job:
        record = await self.records.get(_record_key(job_id_))
        if record is None:
            raise Missing(f"no training job {job_id_!r}")
        run = await self.workflows.run(job_id_)
        job = _job(record, run)
        if job.status == "RUNNING" and job.stage == "fitting" and await self.fits.get(fit_key(job_id_)) is None:
            job.stage = "queued"  # waiting for a worker
        return job

    async def jobs(self, dataset: str | None, status: str | None, offset: int, limit: int) -> JobList:
        ids = (await self.ids.get(_ids_key(dataset))) or JobIds([])
        newest_first = list(reversed(ids.root))
        if status is None:  # the page alone is read; a status filter needs every job's status
            page = [await self.job(i) for i in newest_first[offset : offset + limit]]
            return JobList(jobs=page, total=len(newest_first), offset=offset, limit=limit)
        found = [j for j in [await self.job(i) for i in newest_first] if j.status == status.upper()]
        return JobList(jobs=found[offset : offset + limit], total=len(found), offset=offset, limit=limit)

    # policies

    async def policy(self, dataset: str) -> Policy:
        return (await self.policies.get(_policy_key(dataset))) or Policy()

    async def set_policy(self, dataset: str, policy: Policy) -> Policy:
        if policy.estimator is not None or policy.params:
            task = (await self._manifest(dataset, "latest")).schema_.task
            estimator = policy.estimator or estimators.default_for(task)
            params = estimators.validate(task, estimator, policy.params, self.settings.bounds())
            policy = policy.model_copy(update={"params": params})
        await self.policies.put(_policy_key(dataset), policy)
        return policy


def _status(run: WorkflowRun | None) -> str:
    if run is None:  # recorded, not scheduled yet (or the engine lost it)
        return "PENDING"
    return CANCELED if run.status == "TERMINATED" else run.status


def _job(record: JobRecord, run: WorkflowRun | None) -> Job:
    if run is None:
        return Job(**record.model_dump(), status=_status(run))
    custom = run.custom_status if isinstance(run.custom_status, dict) else {}
    canceled = _status(run) == CANCELED
    return Job(
        **record.model_dump(),
        status=_status(run),
        stage=custom.get("stage"),
        progress=custom.get("progress"),
        # A terminated workflow's output is the reason it was given (see cancel).
        error=(run.output if isinstance(run.output, str) else "canceled") if canceled else run.error,
        result=run.output if isinstance(run.output, dict) and not canceled else None,
    )


def _with(ids: JobIds | None, job: str) -> JobIds:
    ids = ids or JobIds([])
    if job not in ids.root:
        ids.root.append(job)
    return ids


def _record_key(job: str) -> str:
    return f"job:{job}"


def _ids_key(dataset: str | None) -> str:
    return f"jobs:{dataset}" if dataset else "jobs"


def _policy_key(dataset: str) -> str:
    return f"policy:{dataset}"


def _attempts_key(base: str) -> str:
    return f"attempts:{base}"


def fit_key(job: str) -> str:
    return f"fit-started:{job}"

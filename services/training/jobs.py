"""Training's use cases: submit a job (from the API or a committed dataset version), read jobs,
keep per-dataset policies. The workflow is the job record; what is kept here beside it is
what the engine cannot answer: which jobs exist, and for which dataset."""

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel

from services.common.errors import ClientError, Missing
from services.common.events import DATASET_NAME, DatasetVersionCommitted
from services.common.ports import ServiceInvoker, SidecarUnavailable, StateStore, WorkflowRun, Workflows
from services.common.state import Documents
from services.training.domain import estimators
from services.training.settings import Settings
from services.training.workflow import WORKFLOW

log = logging.getLogger(__name__)
MODEL_NAME = DATASET_NAME


class JobRequest(BaseModel):
    """What POST /api/training/jobs takes."""

    dataset: str = Field(pattern=DATASET_NAME)
    version: int | Literal["latest"] = Field("latest", description="a version number (>= 1) or 'latest'")
    estimator: str | None = Field(None, description="from GET /api/training/estimators; default: the policy's")
    params: dict[str, Any] | None = Field(None, description="the estimator's parameters; default: the policy's")
    model: str | None = Field(
        None, pattern=MODEL_NAME, description="the registered model's name; default: the dataset's"
    )


class JobSpec(BaseModel):
    """A job as its workflow gets it: everything resolved, nothing left to look up."""

    job_id: str
    dataset: str
    version: int
    schema_: dict[str, Any] = Field(alias="schema")
    schema_hash: str
    task: str
    estimator: str
    params: dict[str, Any]
    model: str
    seed: int

    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class JobRecord(BaseModel):
    id: str
    dataset: str
    version: int
    estimator: str
    params: dict[str, Any]
    model: str
    created_at: datetime


class Job(JobRecord):
    """A job as the API shows it: its record and what the workflow engine says of it."""

    status: str
    stage: str | None = None
    progress: float | None = None
    error: str | None = None
    result: dict[str, Any] | None = None


class JobList(BaseModel):
    jobs: list[Job]
    total: int
    offset: int
    limit: int


class JobIds(RootModel[list[str]]):
    """Job ids in the order they were submitted."""


class Policy(BaseModel):
    """How a dataset's new versions are trained."""

    auto_train: bool = Field(True, description="train each new committed version")
    estimator: str | None = Field(None, description="default: a sensible one for the dataset's task")
    params: dict[str, Any] = Field(default_factory=dict)


class JobService:
    def __init__(self, state: StateStore, invoker: ServiceInvoker, workflows: Workflows, settings: Settings):
        self.invoker, self.workflows, self.settings = invoker, workflows, settings
        self.records = Documents(state, JobRecord)
        self.ids = Documents(state, JobIds)
        self.policies = Documents(state, Policy)

    # submitting

    async def submit(self, request: JobRequest) -> Job:
        """Schedules the job's workflow, once: the job id is derived from what it trains on and
        how, so a repeated request or a redelivered event finds the same job."""
        manifest = await self._manifest(request.dataset, request.version)
        policy = await self.policy(request.dataset)
        task = manifest["schema"]["task"]
        estimator = request.estimator or policy.estimator or estimators.default_for(task)
        params = estimators.validate(task, estimator, request.params if request.params is not None else policy.params)
        spec = JobSpec(
            job_id="",
            dataset=request.dataset,
            version=manifest["version"],
            schema_=manifest["schema"],
            schema_hash=manifest["schema_hash"],
            task=task,
            estimator=estimator,
            params=params,
            model=request.model or request.dataset,
            seed=self.settings.seed,
        )
        spec.job_id = job_id(spec)
        record = JobRecord(
            id=spec.job_id,
            dataset=spec.dataset,
            version=spec.version,
            estimator=estimator,
            params=params,
            model=spec.model,
            created_at=datetime.now(UTC),
        )
        # Recorded before it is scheduled, so that no workflow runs that the job list does not show.
        await self.records.update(_record_key(spec.job_id), lambda found: found or record)
        await self.ids.update(_ids_key(spec.dataset), lambda ids: _with(ids, spec.job_id))
        await self.ids.update(_ids_key(None), lambda ids: _with(ids, spec.job_id))
        if await self.workflows.schedule(WORKFLOW, spec.job_id, spec.model_dump(mode="json")):
            log.info("job %s scheduled: %s v%s with %s", spec.job_id, spec.dataset, spec.version, estimator)
        return await self.job(spec.job_id)

    async def on_version_committed(self, _attributes: dict[str, Any], event: DatasetVersionCommitted) -> None:
        """Trains a newly committed version when the dataset's policy says so. A version that
        cannot be trained (its policy names parameters it refuses, say) is logged, not retried:
        no retry would change the answer."""
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
            await self.submit(JobRequest(dataset=event.dataset, version=event.version))
        except ClientError as exc:
            log.warning("not training %s v%s: %s", event.dataset, event.version, exc)

    async def _manifest(self, dataset: str, version: int | str) -> dict[str, Any]:
        reply = await self.invoker.call(self.settings.ingestion_app_id, f"api/datasets/{dataset}/versions/{version}")
        if reply.status == 404:
            raise Missing(f"dataset {dataset!r} has no version {version}")
        if reply.status != 200:
            raise SidecarUnavailable(
                f"reading dataset {dataset!r} version {version} from ingestion: "
                f"HTTP {reply.status}: {reply.body[:300]!r}",
                "the ingestion service cannot answer",
            )
        manifest: dict[str, Any] = json.loads(reply.body)
        return manifest

    # reading

    async def job(self, job_id_: str) -> Job:
        record = await self.records.get(_record_key(job_id_))
        if record is None:
            raise Missing(f"no training job {job_id_!r}")
        run = await self.workflows.run(job_id_)
        return _job(record, run)

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
            task = (await self._manifest(dataset, "latest"))["schema"]["task"]
            estimator = policy.estimator or estimators.default_for(task)
            policy = policy.model_copy(update={"params": estimators.validate(task, estimator, policy.params)})
        await self.policies.put(_policy_key(dataset), policy)
        return policy


def job_id(spec: JobSpec) -> str:
    """Readable, and the same for the same dataset version, model, estimator, parameters and seed."""
    what = {k: spec.model_dump(mode="json")[k] for k in ("dataset", "version", "model", "estimator", "params", "seed")}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{spec.dataset}-v{spec.version}-{spec.estimator.replace('_', '-')}-{digest[:12]}"


def _job(record: JobRecord, run: WorkflowRun | None) -> Job:
    if run is None:  # recorded, not scheduled yet (or the engine lost it)
        return Job(**record.model_dump(), status="PENDING")
    custom = run.custom_status if isinstance(run.custom_status, dict) else {}
    return Job(
        **record.model_dump(),
        status=run.status,
        stage=custom.get("stage"),
        progress=custom.get("progress"),
        error=run.error,
        result=run.output if isinstance(run.output, dict) else None,
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

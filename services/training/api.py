"""Training's HTTP routes: translate HTTP to the job service and back, nothing more."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from services.common.contracts import DATASET_NAME, JOB_ID, JOB_STATUSES
from services.common.contracts.jobs import JobRequest
from services.training.deps import JobsDep, SettingsDep
from services.training.domain import estimators
from services.training.domain.jobs import Job, JobList, Policy

router = APIRouter(prefix="/api/training", tags=["training"])

Dataset = Annotated[str, Path(pattern=DATASET_NAME, description="dataset name")]
JobId = Annotated[str, Path(pattern=JOB_ID, description="as the job's submission answered")]
Status = Annotated[
    str | None,
    Query(pattern=f"^({JOB_STATUSES}|{JOB_STATUSES.upper()})$", description=JOB_STATUSES.replace("|", ", ")),
]


@router.post("/jobs", status_code=202, response_model=Job)
async def submit(request: JobRequest, jobs: JobsDep) -> Job:
    """Trains a model on a dataset version, as a durable workflow. The same request again
    answers the same job."""
    return await jobs.submit(request)


@router.get("/jobs", response_model=JobList)
async def list_jobs(
    jobs: JobsDep,
    settings: SettingsDep,
    dataset: Annotated[str | None, Query(pattern=DATASET_NAME)] = None,
    status: Status = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> JobList:
    """Jobs, newest first."""
    limit = min(limit or settings.max_listed_jobs, settings.max_listed_jobs)
    return await jobs.jobs(dataset, status, offset, limit)


@router.get("/jobs/{job_id}", response_model=Job)
async def get_job(job_id: JobId, jobs: JobsDep) -> Job:
    """The job's status, stage and progress; its metrics and model version once done."""
    return await jobs.job(job_id)


@router.delete("/jobs/{job_id}", response_model=Job, responses={202: {"model": Job}, 409: {}})
async def cancel_job(job_id: JobId, jobs: JobsDep, response: Response) -> Job:
    """Cancels a job that has not finished: 200 and the job, CANCELED, its worker killed; 202
    while the engine has not yet reported it so (its worker is killed already). 409 for a job
    that completed or failed."""
    job = await jobs.cancel(job_id)
    if job.status != "CANCELED":
        response.status_code = 202
    return job


@router.get("/estimators")
async def list_estimators(settings: SettingsDep) -> dict[str, Any]:
    """The estimators jobs may use, per task, with each one's parameters, defaults and bounds."""
    return estimators.describe(settings.bounds())


@router.get("/policies/{dataset}", response_model=Policy)
async def get_policy(dataset: Dataset, jobs: JobsDep) -> Policy:
    return await jobs.policy(dataset)


@router.put("/policies/{dataset}", response_model=Policy)
async def set_policy(dataset: Dataset, policy: Policy, jobs: JobsDep) -> Policy:
    """Whether new versions of the dataset are trained, and with which estimator and parameters."""
    return await jobs.set_policy(dataset, policy)

"""The training API, as the public sees it: each route a named operation of training.

Parameters are validated here, by the same rules training applies, before anything is
forwarded; what training answers comes back as it is. tests/api/test_gateway_routes.py checks
that these routes and training's public ones are the same set.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from services.common.contracts import DATASET_NAME, JOB_ID, JOB_STATUSES
from services.gateway.deps import READ, TRAIN, TrainingDep

router = APIRouter(prefix="/api/training", tags=["training"])

Dataset = Annotated[str, Path(pattern=DATASET_NAME, description="dataset name")]
JobId = Annotated[str, Path(pattern=JOB_ID, description="as the job's submission answered")]


@router.post("/jobs", status_code=202, dependencies=[TRAIN])
async def submit(request: Request, training: TrainingDep) -> Response:
    """Trains a model on a dataset version: {"dataset", "version", "estimator", "params", "model"}."""
    return await training.forward(request, "api", "training", "jobs")


@router.get("/jobs", dependencies=[READ])
async def list_jobs(
    request: Request,
    training: TrainingDep,
    dataset: Annotated[str | None, Query(pattern=DATASET_NAME)] = None,
    status: Annotated[
        str | None,
        Query(pattern=f"^({JOB_STATUSES}|{JOB_STATUSES.upper()})$", description=JOB_STATUSES.replace("|", ", ")),
    ] = None,
    offset: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    query = {"dataset": dataset, "status": status, "offset": offset, "limit": limit}
    return await training.forward(request, "api", "training", "jobs", query=query)


@router.get("/jobs/{job_id}", dependencies=[READ])
async def get_job(job_id: JobId, request: Request, training: TrainingDep) -> Response:
    """The job's status, stage and progress; its metrics and model version once done."""
    return await training.forward(request, "api", "training", "jobs", job_id)


@router.delete("/jobs/{job_id}", dependencies=[TRAIN])
async def cancel_job(job_id: JobId, request: Request, training: TrainingDep) -> Response:
    """Cancels a job that has not finished: it shows status CANCELED and its worker is killed."""
    return await training.forward(request, "api", "training", "jobs", job_id)


@router.get("/estimators", dependencies=[READ])
async def list_estimators(request: Request, training: TrainingDep) -> Response:
    return await training.forward(request, "api", "training", "estimators")


@router.get("/policies/{dataset}", dependencies=[READ])
async def get_policy(dataset: Dataset, request: Request, training: TrainingDep) -> Response:
    return await training.forward(request, "api", "training", "policies", dataset)


@router.put("/policies/{dataset}", dependencies=[TRAIN])
async def set_policy(dataset: Dataset, request: Request, training: TrainingDep) -> Response:
    """Whether new versions are trained: {"auto_train", "estimator", "params"}."""
    return await training.forward(request, "api", "training", "policies", dataset)

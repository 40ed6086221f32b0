"""Training jobs' words, as training's API and the gateway in front of it both check them, and
the request that starts a job (training's API takes it; the monitor sends it to retrain)."""

from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt

from services.common.contracts.datasets import DATASET_NAME
from services.common.contracts.models import MODEL_NAME

JOB_ID = r"^[a-z0-9][a-z0-9_-]{0,200}$"  # as a job's submission answers it
# A job's statuses as training reports them, upper-case; a filter may name them in either case.
JOB_STATUSES = "pending|running|completed|failed|canceled|suspended"


class JobRequest(BaseModel):
    """What POST /api/training/jobs takes."""

    dataset: str = Field(pattern=DATASET_NAME)
    version: StrictInt | Literal["latest"] = Field("latest", description="a version number (>= 1) or 'latest'")
    estimator: str | None = Field(None, description="from GET /api/training/estimators; default: the policy's")
    params: dict[str, Any] | None = Field(None, description="the estimator's parameters; default: the policy's")
    model: str | None = Field(
        None, pattern=MODEL_NAME, description="the registered model's name; default: the dataset's"
    )

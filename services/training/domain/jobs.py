"""A training job's records and requests: what the API takes and answers, what the workflow
is given, and what is stored beside it. Plain models, no I/O."""

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, RootModel, StrictBool

from services.training.domain.card import Lineage
from services.training.domain.estimators import Bounds


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
    deadline: datetime | None = None  # the job's wall-clock limit; None: jobs from before there was one
    bounds: Bounds = Field(default_factory=Bounds)  # those the parameters were checked against
    # Rows of the version labeled through feedback (its manifest's origin, a monitoring retrain):
    # the registry's promotion policy reads it in the lineage. Not part of the job id, which the
    # version already names.
    feedback_rows: int = Field(0, ge=0)

    model_config = {"populate_by_name": True, "serialize_by_alias": True}

    def lineage(self) -> Lineage:
        """Where the job's model comes from, as its card and the registry record it."""
        return Lineage(
            dataset=self.dataset,
            dataset_version=self.version,
            schema_hash=self.schema_hash,
            estimator=self.estimator,
            params=self.params,
            seed=self.seed,
            job_id=self.job_id,
            feedback_rows=self.feedback_rows,
        )


class JobRecord(BaseModel):
    id: str
    dataset: str
    version: int
    estimator: str
    params: dict[str, Any]
    model: str
    created_at: datetime
    attempt: int = 1  # of the same request: a new one after a failed or canceled one


class Job(JobRecord):
    """A job as the API shows it: its record and what the workflow engine says of it."""

    status: str = Field(description="PENDING, RUNNING, COMPLETED, FAILED, CANCELED or SUSPENDED")
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


class Attempts(BaseModel):
    """The latest attempt of one request (the job id of attempt 1)."""

    latest: int = 1


class FitStarted(BaseModel):
    """Written when a worker takes the job's fit: until then the job is `queued`."""

    at: datetime


class Policy(BaseModel):
    """How a dataset's new versions are trained."""

    auto_train: StrictBool = Field(True, description="train each new committed version")
    estimator: str | None = Field(None, description="default: a sensible one for the dataset's task")
    params: dict[str, Any] = Field(default_factory=dict)


def job_id(spec: JobSpec) -> str:
    """Readable, and the same for the same dataset version, model, estimator, parameters and seed."""
    what = {k: spec.model_dump(mode="json")[k] for k in ("dataset", "version", "model", "estimator", "params", "seed")}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{spec.dataset}-v{spec.version}-{spec.estimator.replace('_', '-')}-{digest[:12]}"


def attempt_id(base: str, attempt: int) -> str:
    """The first attempt has the request's own id, as jobs had before there were attempts."""
    return base if attempt == 1 else f"{base}-a{attempt}"

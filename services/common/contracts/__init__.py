"""What services share by contract: the words (tasks, column types, names), the payloads one
service sends another (datasets.py, models.py, jobs.py), and the rule two services must apply alike
(coercion.py). Each service imports them from here rather than keeping a copy; each may keep
its own stricter or richer model beside them (ingestion's schema checks fill values, say).

Pydantic and the standard library only, so that the CLI may import them without pulling in
any service's dependencies.
"""

from services.common.contracts.datasets import (
    CATEGORICAL,
    DATASET_NAME,
    EXPORT_FORMAT,
    NUMERIC,
    UPLOAD_ID,
    VERSION_REF,
    Column,
    ColumnType,
    Committed,
    DatasetSchema,
    Feature,
    Manifest,
    MissingPolicy,
    Origin,
    Task,
    UploadStart,
)
from services.common.contracts.jobs import JOB_ID, JOB_STATUSES, JobRequest
from services.common.contracts.models import ALIAS_NAME, LOWER_IS_BETTER, MODEL_NAME, ModelCard, TaskName, VersionInfo
from services.common.contracts.rollouts import DEFAULT_FOR, FINISHED, ROLLOUT_ID, StartRollout

__all__ = [
    "ALIAS_NAME",
    "CATEGORICAL",
    "DATASET_NAME",
    "DEFAULT_FOR",
    "EXPORT_FORMAT",
    "UPLOAD_ID",
    "VERSION_REF",
    "FINISHED",
    "JOB_ID",
    "JOB_STATUSES",
    "LOWER_IS_BETTER",
    "MODEL_NAME",
    "NUMERIC",
    "ROLLOUT_ID",
    "Column",
    "ColumnType",
    "Committed",
    "DatasetSchema",
    "Feature",
    "JobRequest",
    "Manifest",
    "MissingPolicy",
    "Origin",
    "ModelCard",
    "StartRollout",
    "Task",
    "TaskName",
    "UploadStart",
    "VersionInfo",
]

"""The model card written beside each artifact: what the model reads, what it predicts, how
well, and where it came from."""

from pydantic import BaseModel

from services.common.contracts import ColumnType, Feature, Task
from services.common.contracts import models as registry
from services.training.domain.evaluate import Label, Metrics


class Lineage(registry.Lineage):
    """Where a model comes from, as the registry records it, and the seed it was fitted with:
    the job's own description, passed in by the caller."""

    seed: int


class ModelCard(BaseModel):
    format: str = "skops"
    sha256: str  # of the artifact's bytes
    task: Task
    target: str
    target_type: ColumnType
    features: list[Feature]  # the input columns, each as `pipeline.frame` coerces it
    classes: list[Label] | None  # classifiers only, in the order of predict_proba's columns
    metrics: Metrics  # on the holdout
    train_rows: int
    fit_s: float
    eval_s: float
    lineage: Lineage
    # What loaded the model's classes when it was written: a loader with other versions may
    # still read the file, but its answers are not guaranteed to be the same.
    versions: dict[str, str]

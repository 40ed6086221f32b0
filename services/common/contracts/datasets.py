"""The dataset vocabulary every service shares: what a task, a column type and a missing-value
policy are called, and what a dataset's name may look like. Ingestion states them in each
schema it infers or is given; training learns by them; inference and the CLI speak them.

Pydantic and the standard library only: the CLI imports this module too.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

DATASET_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # lower-case letters, digits, '-' and '_'; safe in keys and paths
UPLOAD_ID = r"^[0-9a-f]{32}$"  # as an upload's start answers it
VERSION_REF = r"^(latest|[0-9]{1,9})$"  # a dataset version's number, or 'latest'
EXPORT_FORMAT = r"^(csv|parquet)$"  # what a dataset version downloads as


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class ColumnType(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    CATEGORY = "category"
    BOOLEAN = "boolean"
    TEXT = "text"

    @property
    def with_article(self) -> str:
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value}"


class MissingPolicy(StrEnum):
    KEEP = "keep"  # stays missing: counted in the profile, imputed at training
    REJECT = "reject"  # the row is rejected
    FILL = "fill"  # replaced by the column's fill_value


# How a model reads each type: numbers as numbers (imputed, scaled for linear models), categories
# one-hot encoded, booleans as 0/1, text not at all (no step of the pipeline turns free text into
# numbers yet).
NUMERIC = frozenset({ColumnType.NUMBER, ColumnType.INTEGER})
CATEGORICAL = frozenset({ColumnType.CATEGORY, ColumnType.BOOLEAN})


def _known(type_: str) -> str:
    """A ColumnType when it is one (it compares and prints as the same string either way)."""
    try:
        return ColumnType(type_)
    except ValueError:
        return type_


def _unrecorded(value: object) -> bool:
    """What training did not record is left out when written, not null: an old card reads as it was."""
    return value is None


class Typed(BaseModel):
    """A name and its column type: what a model's feature and a dataset's column share."""

    name: str = Field(min_length=1, max_length=200)
    type: Annotated[str, AfterValidator(_known)] = Field(min_length=1, max_length=32)


# A column a model reads, as its card lists it: the model's signature is its features, in
# order. The type is a ColumnType; a string on the wire, kept as it is when it is not one, so
# that a reader names what it does not know rather than failing to read the card. (No
# docstring: it would be the registry's OpenAPI description of the model.)
#
# What training saw of it, when the card says (versions registered before these were recorded
# have none, and inference checks nothing it does not know): the categories of a category
# feature, the smallest and largest value of a numeric one.
class Feature(Typed):
    categories: list[str] | None = Field(
        None, description="the categories seen in training (category features)", exclude_if=_unrecorded
    )
    min: float | None = Field(
        None, description="the smallest value seen in training (numeric features)", exclude_if=_unrecorded
    )
    max: float | None = Field(
        None, description="the largest value seen in training (numeric features)", exclude_if=_unrecorded
    )


class Column(Typed):
    """A column of a dataset's schema, as ingestion's manifest states it (ingestion's own model
    of it also checks fill values and maps types to Arrow)."""

    type: ColumnType
    # Ingestion applies these when it validates rows; the others only carry them along.
    missing: MissingPolicy = MissingPolicy.KEEP
    fill_value: str | float | int | bool | None = None


class DatasetSchema(BaseModel):
    """A dataset's schema, as ingestion's manifest states it ("schema": task, target, columns).
    Fields it does not know are ignored, so ingestion may add some without breaking a reader."""

    task: Task
    target: str
    columns: list[Column]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"columns named more than once in {names}")
        target = self.column(self.target)
        if target is None:
            raise ValueError(f"target {self.target!r} is not one of the columns {names}")
        if self.task == Task.REGRESSION and target.type not in NUMERIC:
            raise ValueError(f"a regression target must be numbers; {self.target!r} is {target.type}")
        return self

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def target_type(self) -> ColumnType:
        column = self.column(self.target)
        assert column is not None  # checked when the schema was built
        return column.type

    @property
    def features(self) -> list[Feature]:
        """The columns a model learns from, its signature: all but the target and text (which
        no step of the pipeline turns into numbers yet)."""
        return [
            Feature(name=c.name, type=c.type)
            for c in self.columns
            if c.name != self.target and c.type != ColumnType.TEXT
        ]


class Origin(BaseModel):
    """Why a dataset version exists beyond an upload: a monitoring retrain's (made by the monitor).
    Ingestion keeps it in the version's manifest as the upload session that made it carried it."""

    kind: Literal["retrain"] = "retrain"
    model: str = Field(pattern=DATASET_NAME, description="the model retrained")
    retrain_id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    base_version: int = Field(ge=1, description="the version of this dataset the model was trained on")
    feedback_rows: int = Field(ge=0, description="rows whose target is an actual sent as feedback")


class UploadStart(BaseModel):
    """Body of ingestion's POST /internal/datasets/{name}/uploads: an upload session whose
    version keeps the origin (parts and commit then go through the public upload routes). The
    target and task, when given, must be the dataset's, as in the public start."""

    origin: Origin
    target: str | None = Field(None, min_length=1, max_length=200)
    task: Task | None = None


class Committed(BaseModel):
    """What a commit answers (POST .../uploads/{id}/commit), as other services read it: ingestion
    answers more (its CommitResult), which a reader ignores. `unchanged`: the upload held what
    the latest version holds, which is the version answered."""

    dataset: str
    version: int
    unchanged: bool
    row_count: int


class Manifest(BaseModel):
    """A committed dataset version, as ingestion serves it (GET api/datasets/{name}/versions/{v},
    where v is a number or `latest`). Ingestion's stored manifest holds more (its part files,
    the upload it came from); a reader ignores what it does not know."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    dataset: str
    version: int
    # `schema` is the natural name but shadows a BaseModel attribute: read it under an alias.
    schema_: DatasetSchema = Field(alias="schema")
    schema_hash: str  # what two versions must share to be comparable
    row_count: int
    sha256: str  # over the schema and the fingerprints of the rows, in order
    rows_rejected: int = 0
    duplicates_dropped: int = 0
    profile: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    origin: Origin | None = None  # None: an upload's, as every version before retraining

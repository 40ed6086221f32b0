"""The dataset schema as ingestion's manifest states it ("schema": task, target, columns).

Services never import each other, so training reads the manifest's JSON into its own model,
holding only what training needs; fields it does not know are ignored, so ingestion may add
some without breaking training.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class ColumnType(StrEnum):
    NUMBER = "number"
    INTEGER = "integer"
    CATEGORY = "category"
    BOOLEAN = "boolean"
    TEXT = "text"


NUMERIC = frozenset({ColumnType.NUMBER, ColumnType.INTEGER})
CATEGORICAL = frozenset({ColumnType.CATEGORY, ColumnType.BOOLEAN})


class Feature(BaseModel):
    """A column a model reads, as a model card lists it."""

    name: str
    type: ColumnType


class Column(Feature):
    model_config = ConfigDict(extra="ignore")

    # Ingestion applies these when it validates rows; training only carries them along.
    missing: str = "keep"
    fill_value: str | float | int | bool | None = None


class DatasetSchema(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task: Task
    target: str
    columns: list[Column]

    @model_validator(mode="after")
    def _consistent(self) -> "DatasetSchema":
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
        """The columns a model learns from: all but the target and text (which no step of the
        pipeline turns into numbers yet)."""
        return [
            Feature(name=c.name, type=c.type)
            for c in self.columns
            if c.name != self.target and c.type != ColumnType.TEXT
        ]

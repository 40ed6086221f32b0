"""A model version as the registry describes it (GET api/models/{name}/versions/{v}), holding
only what inference needs; fields it does not know are ignored."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

NUMERIC = frozenset({"number", "integer"})
CATEGORICAL = frozenset({"category", "text"})


class Feature(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    type: str  # number, integer, category, boolean or text (the dataset schema's column types)


class Card(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task: Literal["classification", "regression"]
    target: str
    features: list[Feature]
    classes: list[str | int | float | bool] = []

    @property
    def all_numeric(self) -> bool:
        """Every feature can be one column of a 2-D numeric tensor."""
        return all(f.type in NUMERIC or f.type == "boolean" for f in self.features)


class Artifact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str
    sha256: str


class VersionInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    version: int
    artifact: Artifact
    card: Card

"""Small real models for inference's tests: scikit-learn pipelines fitted here, dumped with
skops, and a fake registry (a FakeInvoker table) that describes and serves them."""

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from services.common.clients import RegistryClient
from services.common.ports import Reply
from tests.fakes import FakeInvoker

FLOWER_FEATURES = [
    {"name": "length", "type": "number"},
    {"name": "width", "type": "number"},
    {"name": "colour", "type": "category"},
]
HOUSE_FEATURES = [{"name": "rooms", "type": "integer"}, {"name": "area", "type": "number"}]


def flowers(seed: int = 0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    n = 60
    species = np.array(["setosa", "versicolor", "virginica"])[np.arange(n) % 3]
    length = np.where(species == "setosa", 1.5, np.where(species == "versicolor", 4.5, 6.0)) + r.normal(0, 0.3, n)
    width = length / 3 + r.normal(0, 0.1, n)
    colour = np.where(species == "virginica", "blue", np.where(r.random(n) < 0.5, "red", "white"))
    return pd.DataFrame({"length": length, "width": width, "colour": colour.astype(object), "species": species})


def houses(seed: int = 0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    rooms = r.integers(1, 7, 50).astype(float)
    area = rooms * 22 + r.normal(0, 10, 50)
    return pd.DataFrame({"rooms": rooms, "area": area, "price": area * 2600 + rooms * 9000})


def _pipeline(numbers: list[str], categories: list[str], model: Any) -> Pipeline:
    steps: list[Any] = [
        ("numbers", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numbers)
    ]
    if categories:
        encode = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        steps.append(("categories", encode, categories))
    return Pipeline([("features", ColumnTransformer(steps, remainder="drop")), ("model", model)])


def flower_model(c: float = 1.0) -> Pipeline:
    data = flowers()
    pipeline = _pipeline(["length", "width"], ["colour"], LogisticRegression(C=c, max_iter=500))
    return pipeline.fit(data[["length", "width", "colour"]], data["species"])


def house_model() -> Pipeline:
    data = houses()
    return _pipeline(["rooms", "area"], [], Ridge()).fit(data[["rooms", "area"]], data["price"])


def dumps(pipeline: Pipeline) -> bytes:
    return bytes(sio.dumps(pipeline))


class Registry:
    """What the registry answers for the models put in it, as a FakeInvoker table."""

    def __init__(self, app_id: str = "registry"):
        self.app_id = app_id
        self.invoker = FakeInvoker()

    @property
    def client(self) -> RegistryClient:
        """The registry's client over the fake: the data plane's calls go through both."""
        return RegistryClient(self.invoker, self.app_id)

    def add(
        self,
        name: str,
        version: int,
        pipeline: Pipeline,
        features: list[dict[str, str]],
        aliases: tuple[str, ...] = (),
        served: bytes | None = None,
        onnx: dict[str, Any] | None = None,
        onnx_file: bytes | None = None,
        missing_category: str | None = None,
    ) -> bytes:
        """Registers the pipeline's file; `served` is what the artifact route sends instead (a
        tampered file, say). `onnx` is the version's OnnxModel as JSON, `onnx_file` what its
        route sends."""
        data = dumps(pipeline)
        classifier = hasattr(pipeline, "classes_")
        answer = {
            "model": name,
            "version": version,
            "aliases": list(aliases),
            "artifact": {"key": f"models/{name}/{version}.skops", "sha256": hashlib.sha256(data).hexdigest()},
            "card": {
                "task": "classification" if classifier else "regression",
                "target": "species" if classifier else "price",
                "features": features,
                "classes": pipeline.classes_.tolist() if classifier else [],
                "missing_category": missing_category,
            },
            "metrics": {},
            "onnx": onnx,
        }
        reply = Reply(200, json.dumps(answer).encode())
        for ref in (str(version), *aliases):
            self.invoker.replies[(self.app_id, f"api/models/{name}/versions/{ref}")] = reply
        self.invoker.replies[(self.app_id, f"api/models/{name}/versions/{version}/artifact")] = Reply(
            200, served if served is not None else data, "application/octet-stream"
        )
        if onnx_file is not None:
            self.invoker.replies[(self.app_id, f"api/models/{name}/versions/{version}/onnx")] = Reply(
                200, onnx_file, "application/octet-stream"
            )
        return data

    def answer(self, name: str, version: int) -> dict[str, Any]:
        """What the registry describes a version as (JSON), to change and `put` back."""
        return dict(json.loads(self.invoker.replies[(self.app_id, f"api/models/{name}/versions/{version}")].body))

    def put(self, name: str, version: int, answer: dict[str, Any]) -> None:
        reply = Reply(200, json.dumps(answer).encode())
        for ref in (str(version), *answer["aliases"]):
            self.invoker.replies[(self.app_id, f"api/models/{name}/versions/{ref}")] = reply

    def alias(self, name: str, alias: str, version: int) -> None:
        self.invoker.replies[(self.app_id, f"api/models/{name}/versions/{alias}")] = self.invoker.replies[
            (self.app_id, f"api/models/{name}/versions/{version}")
        ]

    def unalias(self, name: str, alias: str) -> None:
        self.invoker.replies.pop((self.app_id, f"api/models/{name}/versions/{alias}"))

    def describe_calls(self) -> list[str]:
        """Reads of a version's description (not of its files, nor of the model's traffic table)."""
        return [m for _, m, _ in self.invoker.calls if "/versions/" in m and not m.endswith(("/artifact", "/onnx"))]

    def traffic(self, name: str, table: dict[str, Any], aliases: dict[str, int] | None = None) -> None:
        """What GET api/models/{name} answers: the aliases and the traffic table."""
        body = {"name": name, "aliases": aliases or {}, "traffic": table}
        self.invoker.replies[(self.app_id, f"api/models/{name}")] = Reply(200, json.dumps(body).encode())

    def table_calls(self) -> list[str]:
        return [m for _, m, _ in self.invoker.calls if "/versions/" not in m and m.startswith("api/models/")]

    def artifact_calls(self) -> list[str]:
        return [m for _, m, _ in self.invoker.calls if m.endswith("/artifact")]

"""The Open Inference Protocol v2's tensors (KServe predict-api v2), to and from the columns a
model reads (columns.py): pure, no HTTP, no pandas.

Inputs come as one tensor per feature ([n] or [n, 1], BYTES for category and text features,
FP64/FP32/INT64/.../BOOL for the rest), or as one 2-D tensor [n, features] when every feature
is numeric (its columns in the order of the model's features). Outputs: `predict` and, for
classifiers, `predict_proba` ([n, classes], in the order of the output's `classes` parameter).

An input named as no feature is refused or ignored by the model contract (contract.py, through
the data plane), before `decode` reads the rest; the request's `parameters.strict` says which.
Metadata lists each input's signature in its `parameters` (the feature's type, and the
categories or range seen in training when the card has them).
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, StrictInt

from services.common.contracts import NUMERIC, Feature, ModelCard
from services.common.contracts.coercion import OBJECT, dtype
from services.inference.domain.columns import Columns, Refused, column
from services.inference.domain.errors import BadTensor

INTEGERS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
FLOATS = frozenset({"FP16", "FP32", "FP64"})
NUMBERS = INTEGERS | FLOATS
DATATYPES = NUMBERS | {"BOOL", "BYTES"}
PREDICT, PROBA = "predict", "predict_proba"


class Tensor(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    shape: list[StrictInt] = Field(max_length=8)
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    id: str | None = Field(None, max_length=200)
    parameters: dict[str, Any] | None = None
    inputs: list[Tensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


def datatype_of(feature_type: str) -> str:
    return {"number": "FP64", "integer": "INT64", "boolean": "BOOL"}.get(feature_type, "BYTES")


def model_inputs(card: ModelCard) -> list[dict[str, Any]]:
    return [
        {
            "name": f.name,
            "datatype": datatype_of(f.type),
            "shape": [-1, 1],
            "parameters": f.model_dump(exclude={"name"}, exclude_none=True),
        }
        for f in card.features
    ]


def strict(request: InferRequest) -> bool:
    """The request's `parameters.strict`: true (the default) refuses an input the model does not know."""
    value = (request.parameters or {}).get("strict", True)
    if not isinstance(value, bool):
        raise BadTensor(f"parameters.strict must be true or false, not {value!r:.40}")
    return value


def named(inputs: Sequence[Tensor], card: ModelCard) -> list[str]:
    """The names the request gives as features' (none for one 2-D tensor, whose columns are the
    features in order whatever its name)."""
    features = {f.name for f in card.features}
    if len(inputs) == 1 and inputs[0].name not in features:
        return []
    return [t.name for t in inputs]


def model_outputs(card: ModelCard) -> list[dict[str, Any]]:
    if card.task == "regression":
        return [{"name": PREDICT, "datatype": "FP64", "shape": [-1]}]
    return [
        {"name": PREDICT, "datatype": values_datatype(card.classes), "shape": [-1]},
        {"name": PROBA, "datatype": "FP64", "shape": [-1, len(card.classes)]},
    ]


def outputs_wanted(request: InferRequest, card: ModelCard) -> list[str]:
    offered = [PREDICT, PROBA] if card.task == "classification" else [PREDICT]
    if not request.outputs:
        return offered
    names = [o.name for o in request.outputs]
    unknown = [n for n in names if n not in offered]
    if unknown:
        raise BadTensor(f"unknown output {unknown[0]!r}: this model offers {offered}")
    return list(dict.fromkeys(names))


def _flat(data: list[Any]) -> list[Any]:
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for v in data:
        out.extend(_flat(v) if isinstance(v, list) else [v])
    return out


def _known_datatype(tensor: Tensor) -> None:
    if tensor.datatype not in DATATYPES:
        raise BadTensor(
            f"input {tensor.name!r}: unknown datatype {tensor.datatype!r}; "
            f"the datatypes are {', '.join(sorted(DATATYPES))}"
        )


# The Python types each datatype's values may have in JSON (None: a missing value).
_ALLOWED = {
    **{name: frozenset({int, type(None)}) for name in INTEGERS},
    **{name: frozenset({int, float, type(None)}) for name in FLOATS},
    "BOOL": frozenset({bool, type(None)}),
    "BYTES": frozenset({str, type(None)}),
}


def _values(tensor: Tensor) -> list[Any]:
    _known_datatype(tensor)
    if any(d < 0 for d in tensor.shape):
        raise BadTensor(f"input {tensor.name!r}: shape {tensor.shape} has a negative dimension")
    values = _flat(tensor.data)
    size = math.prod(tensor.shape)
    if len(values) != size:
        raise BadTensor(f"input {tensor.name!r}: shape {tensor.shape} needs {size} values, data has {len(values)}")
    if set(map(type, values)) <= _ALLOWED[tensor.datatype]:
        return values  # every value a plain one of the datatype's kinds (JSON makes no subclasses)
    for i, v in enumerate(values):  # which one is not, to say so
        if v is None:
            continue  # a missing value
        if tensor.datatype == "BYTES":
            ok = isinstance(v, str)
        elif tensor.datatype == "BOOL":
            ok = isinstance(v, bool)
        elif tensor.datatype in INTEGERS:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        if not ok:
            raise BadTensor(f"input {tensor.name!r}: value {i} ({v!r:.40}) is not {tensor.datatype}")
    return values


def _fits(tensor: Tensor, feature: Feature) -> None:
    numeric = feature.type in NUMERIC
    if numeric and tensor.datatype in NUMBERS:
        return
    if feature.type == "boolean" and tensor.datatype in NUMBERS | {"BOOL"}:
        return
    if not numeric and feature.type != "boolean" and tensor.datatype == "BYTES":
        return
    raise BadTensor(
        f"input {tensor.name!r} is a {feature.type} feature: send it as {datatype_of(feature.type)}, "
        f"not {tensor.datatype}"
    )


def _column(values: Sequence[Any], feature: Feature, tensor: str) -> np.ndarray:
    try:
        return column(values, feature)
    except Refused as e:
        raise BadTensor(f"input {tensor!r}: {e}") from None


def rows(request: InferRequest) -> int:
    """How many rows the request holds, by its first input's shape (before anything is decoded)."""
    shape = request.inputs[0].shape
    return shape[0] if shape else 0


def decode(inputs: Sequence[Tensor], card: ModelCard) -> Columns:
    """The columns the model reads, from one tensor per feature or one 2-D tensor. Inputs named as
    no feature are skipped: the model contract has refused them or warned of them already."""
    features = {f.name: f for f in card.features}
    if not named(inputs, card):
        return _matrix(inputs[0], card)
    columns: Columns = {}
    rows: int | None = None
    for tensor in inputs:
        feature = features.get(tensor.name)
        if feature is None:
            continue
        _known_datatype(tensor)
        if tensor.name in columns:
            raise BadTensor(f"input {tensor.name!r} is given twice")
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise BadTensor(f"input {tensor.name!r}: shape {tensor.shape} should be [rows] or [rows, 1]")
        if rows is not None and tensor.shape[0] != rows:
            raise BadTensor(f"input {tensor.name!r} has {tensor.shape[0]} rows, the inputs before it {rows}")
        rows = tensor.shape[0]
        values = _values(tensor)
        _fits(tensor, feature)
        columns[tensor.name] = _column(values, feature, tensor.name)
    missing = [name for name in features if name not in columns]
    if missing:
        raise BadTensor(f"missing inputs {missing}: send one tensor per feature (or one 2-D tensor)")
    return {name: columns[name] for name in features}


def _matrix(tensor: Tensor, card: ModelCard) -> Columns:
    _known_datatype(tensor)
    names = [f.name for f in card.features]
    if not card.all_numeric:
        kinds = {f.name: f.type for f in card.features if dtype(f.type) == OBJECT}
        raise BadTensor(
            f"unknown input {tensor.name!r}: one 2-D input needs every feature numeric, and {kinds} are not; "
            f"send one tensor per feature, named {names}"
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != len(names):
        raise BadTensor(
            f"input {tensor.name!r}: shape {tensor.shape} should be [rows, {len(names)}] (the features {names}), "
            f"or send one tensor per feature"
        )
    if tensor.datatype not in NUMBERS | {"BOOL"}:
        raise BadTensor(
            f"input {tensor.name!r}: a 2-D input must be numeric (FP64, FP32, INT64, ...), not {tensor.datatype}"
        )
    values = _values(tensor)
    width = len(names)
    return {f.name: _column(values[i::width], f, tensor.name) for i, f in enumerate(card.features)}


def values_datatype(values: Sequence[Any]) -> str:
    if values and all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"


def plain(values: np.ndarray) -> list[Any]:
    """Numpy values as JSON-ready Python ones."""
    return [v if isinstance(v, str | bool | int | float) or v is None else str(v) for v in values.tolist()]


def output(name: str, values: np.ndarray, classes: Sequence[Any] | None = None) -> dict[str, Any]:
    if values.ndim == 2:
        data = [float(v) for v in values.ravel().tolist()]
        out: dict[str, Any] = {"name": name, "shape": list(values.shape), "datatype": "FP64", "data": data}
        if classes is not None:
            out["parameters"] = {"classes": list(classes)}
        return out
    items = plain(values)
    kind = values_datatype(items)
    if kind == "BYTES":
        items = [str(v) for v in items]
    return {"name": name, "shape": [len(items)], "datatype": kind, "data": items}


def encode(
    request: InferRequest,
    card: ModelCard,
    predictions: np.ndarray,
    probabilities: np.ndarray | None,
    classes: Sequence[Any] | None,
) -> list[dict[str, Any]]:
    """The outputs the request asks for (all the model offers when it names none)."""
    outputs = []
    for name in outputs_wanted(request, card):
        if name == PREDICT:
            outputs.append(output(PREDICT, predictions))
        elif probabilities is not None:
            outputs.append(output(PROBA, probabilities, classes))
    return outputs

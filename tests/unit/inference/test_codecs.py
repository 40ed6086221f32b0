import math
import re

import numpy as np
import pytest

from services.common.contracts import Feature, ModelCard
from services.common.contracts.coercion import WrongType, coerce
from services.inference.domain import columns, records, tensors
from services.inference.domain.columns import Refused
from services.inference.domain.errors import BadRecord, BadTensor

MIXED = ModelCard.model_validate(
    {
        "task": "classification",
        "target": "species",
        "features": [
            {"name": "length", "type": "number"},
            {"name": "rooms", "type": "integer"},
            {"name": "colour", "type": "category"},
            {"name": "wild", "type": "boolean"},
        ],
        "classes": ["a", "b"],
    }
)
NUMERIC = ModelCard.model_validate(
    {
        "task": "regression",
        "target": "price",
        "features": [{"name": "rooms", "type": "integer"}, {"name": "area", "type": "number"}],
    }
)


def tensor(name, datatype, data, shape=None):
    return tensors.Tensor(name=name, datatype=datatype, data=data, shape=shape or [len(data)])


def test_records_are_coerced_as_training_coerces_and_missing_features_are_nan():
    frame = records.columns(
        [{"length": 1, "rooms": 2.0, "colour": 3, "wild": True}, {"colour": None, "extra": "ignored"}], MIXED.features
    )
    assert frame["length"].tolist()[0] == 1.0 and math.isnan(frame["length"][1])
    assert frame["colour"][0] == "3" and math.isnan(frame["colour"][1])
    assert frame["wild"].tolist()[0] == 1.0 and str(frame["rooms"].dtype) == "float64"


@pytest.mark.parametrize(
    ("value", "field"),
    [("abc", "length"), (True, "length"), (2.5, "rooms"), ({"a": 1}, "colour"), ("yes", "wild"), (math.inf, "length")],
)
def test_a_wrong_typed_value_is_refused_naming_record_and_field(value, field):
    with pytest.raises(BadRecord) as caught:
        records.columns([{}, {field: value}], MIXED.features)
    assert caught.value.status == 422
    assert f"record 1, field {field!r}" in str(caught.value)
    assert caught.value.details == {"record": 1, "field": field}


def test_one_tensor_per_feature_makes_the_columns():
    frame = tensors.decode(
        [
            tensor("colour", "BYTES", ["red", "blue"]),
            tensor("length", "FP32", [[1.5], [2.5]], [2, 1]),
            tensor("rooms", "INT64", [1, 2]),
            tensor("wild", "BOOL", [True, False]),
        ],
        MIXED,
    )
    assert list(frame) == ["length", "rooms", "colour", "wild"]
    assert frame["length"].tolist() == [1.5, 2.5] and frame["wild"].tolist() == [1.0, 0.0]


def test_a_2d_tensor_fills_the_features_in_order():
    frame = tensors.decode([tensor("input-0", "FP64", [3, 70.5, 4, 95.0], [2, 2])], NUMERIC)
    assert {name: values.tolist() for name, values in frame.items()} == {"rooms": [3.0, 4.0], "area": [70.5, 95.0]}


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ([tensor("rooms", "INT64", [1, 2]), tensor("area", "FP64", [1.0])], "has 1 rows"),
        ([tensor("rooms", "INT64", [1, 2], [3])], "needs 3 values"),
        ([tensor("rooms", "INT64", [1])], "missing inputs ['area']"),
        ([tensor("rooms", "BYTES", ["1"]), tensor("area", "FP64", [1.0])], "send it as INT64, not BYTES"),
        ([tensor("rooms", "INT64", [1.5]), tensor("area", "FP64", [1.0])], "is not INT64"),
        ([tensor("rooms", "INT64", [1]), tensor("area", "FP99", [1.0])], "unknown datatype"),
        ([tensor("x", "FP64", [1.0, 2.0, 3.0], [1, 3])], "should be [rows, 2]"),
        ([tensor("x", "BYTES", ["a", "b"], [1, 2])], "must be numeric"),
        ([tensor("x", "FOO", [1.0, 2.0], [1, 2])], "unknown datatype 'FOO'; the datatypes are BOOL, BYTES, FP16"),
        ([tensor("rooms", "FOO", [1]), tensor("area", "FP64", [1.0])], "the datatypes are BOOL, BYTES, FP16"),
    ],
)
def test_a_bad_tensor_is_refused_in_words(inputs, words):
    with pytest.raises(BadTensor) as caught:
        tensors.decode(inputs, NUMERIC)
    assert caught.value.status == 400 and words in str(caught.value)


def test_a_2d_tensor_is_refused_when_a_feature_is_a_category():
    with pytest.raises(BadTensor, match="every feature numeric"):
        tensors.decode([tensor("x", "FP64", [1.0, 2.0, 3.0, 4.0], [1, 4])], MIXED)


def test_outputs_carry_datatypes_and_shapes():
    assert tensors.output("predict", np.array(["a", "b"], dtype=object)) == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["a", "b"],
    }
    assert tensors.output("predict", np.array([1, 2]))["datatype"] == "INT64"
    proba = tensors.output("predict_proba", np.array([[0.25, 0.75]]), ["a", "b"])
    assert proba["shape"] == [1, 2] and proba["data"] == [0.25, 0.75] and proba["parameters"] == {"classes": ["a", "b"]}


def test_requested_outputs_are_honoured_and_unknown_ones_refused():
    request = tensors.InferRequest(inputs=[tensor("x", "FP64", [1.0])], outputs=[{"name": "predict_proba"}])
    assert tensors.outputs_wanted(request, MIXED) == ["predict_proba"]
    with pytest.raises(BadTensor, match="offers"):
        tensors.outputs_wanted(request, NUMERIC)


def test_model_metadata_names_each_feature_with_its_datatype():
    assert [(i["name"], i["datatype"]) for i in tensors.model_inputs(MIXED)] == [
        ("length", "FP64"),
        ("rooms", "INT64"),
        ("colour", "BYTES"),
        ("wild", "BOOL"),
    ]
    assert [o["name"] for o in tensors.model_outputs(MIXED)] == ["predict", "predict_proba"]


@pytest.mark.parametrize(
    ("type_", "values"),
    [
        ("number", [1, 2.5, None, -0.0, 1e300, 7]),
        ("integer", [1, 2.0, None, -3]),
        ("integer", [1, 2.5]),  # not an integer: refused
        ("number", [1.0, float("inf")]),  # not finite: refused
        ("number", [1, True]),  # a boolean is no number: refused
        ("number", [1, "2"]),  # nor a string
        ("number", [10**400]),  # nor an integer beyond any float
    ],
)
def test_numbers_decoded_at_numpys_speed_are_what_the_rule_makes_of_each_value(type_, values):
    feature = Feature(name="x", type=type_)
    try:
        expected = np.array([coerce(v, type_) for v in values], dtype=np.float64)
    except WrongType as e:
        with pytest.raises(Refused, match=re.escape(str(e))):
            columns.column(values, feature)
    else:
        np.testing.assert_array_equal(columns.column(values, feature), expected)

"""The model contract through both protocols: an unknown name is a 422 naming the nearest known
one, `strict: false` answers with warnings instead, and missing features, unseen categories and
far numbers are warned of and counted per model version."""

import pytest

from tests.unit.inference.models import FLOWER_FEATURES, flower_model, flowers

ROW = {"length": 1.4, "width": 0.5, "colour": "red"}


@pytest.fixture
def signed(served):
    """'iris': the flowers classifier under a card that records what training saw."""
    data = flowers()
    features = [
        {"name": "length", "type": "number", "min": float(data.length.min()), "max": float(data.length.max())},
        {"name": "width", "type": "number", "min": float(data.width.min()), "max": float(data.width.max())},
        {"name": "colour", "type": "category", "categories": sorted(set(data.colour))},
    ]
    served.registry.add("iris", 1, flower_model(), features, aliases=("champion",))
    return served


def tensors(**columns):
    return {
        "inputs": [
            {"name": n, "shape": [len(v)], "datatype": "BYTES" if isinstance(v[0], str) else "FP64", "data": v}
            for n, v in columns.items()
        ]
    }


def test_json_an_unknown_field_is_422_naming_it_and_the_nearest_name(signed):
    reply = signed.post("/api/models/iris/predict", json={"records": [ROW, {"length": 1, "widht": 0.4}]})
    assert reply.status_code == 422
    body = reply.json()
    assert (body["field"], body["nearest"], body["record"]) == ("widht", "width", 1)
    assert "unknown field 'widht': did you mean 'width'?" in body["detail"]


def test_json_the_target_is_accepted_quietly(signed):
    reply = signed.post("/api/models/iris/predict", json={"records": [{**ROW, "species": "setosa"}]})
    assert reply.status_code == 200 and "warnings" not in reply.json()


def test_json_not_strict_ignores_unknown_fields_and_warns(signed):
    reply = signed.post(
        "/api/models/iris/predict", json={"records": [{**ROW, "id": 1}, {**ROW, "id": 2}], "strict": False}
    )
    assert reply.status_code == 200, reply.text
    assert (
        reply.json()["predictions"]
        == signed.post("/api/models/iris/predict", json={"records": [ROW] * 2}).json()["predictions"]
    )
    [warning] = reply.json()["warnings"]
    assert (warning["kind"], warning["field"], warning["records"]) == ("unknown_field", "id", 2)


def test_json_missing_unseen_and_far_values_are_warned_of(signed):
    records = [ROW, {"length": 1.4, "colour": "green"}, {"length": 60.0, "width": 0.5, "colour": "red"}]
    reply = signed.post("/api/models/iris/predict", json={"records": records})
    assert reply.status_code == 200, reply.text
    warnings = {(w["kind"], w["field"]): w["records"] for w in reply.json()["warnings"]}
    assert warnings == {("missing", "width"): 1, ("unseen_category", "colour"): 1, ("out_of_range", "length"): 1}


def test_an_old_card_still_serves_with_no_category_or_range_warnings(served):
    reply = served.post("/api/models/flowers/predict", json={"records": [{"length": 600.0, "colour": "green"}]})
    assert reply.status_code == 200, reply.text
    assert [(w["kind"], w["field"]) for w in reply.json()["warnings"]] == [("missing", "width")]
    assert served.post("/api/models/flowers/predict", json={"records": [ROW]}).json().keys() == {
        "model",
        "version",
        "runtime",
        "prediction_ids",
        "predictions",
        "probabilities",
    }


def test_oip_an_unknown_input_is_422_naming_it_and_the_nearest_name(signed):
    request = tensors(length=[1.4], width=[0.5], colur=["red"])
    reply = signed.post("/v2/models/iris/infer", json=request)
    assert reply.status_code == 422
    assert "unknown input 'colur': did you mean 'colour'?" in reply.json()["error"]


def test_oip_not_strict_and_the_target_ignore_names_and_values_are_warned_of(signed):
    request = tensors(length=[1.4, 60.0], width=[0.5, 0.5], colour=["red", "green"], species=["a", "b"], id=["1", "2"])
    assert signed.post("/v2/models/iris/infer", json=request).status_code == 422  # id; species is the target
    reply = signed.post("/v2/models/iris/infer", json={**request, "parameters": {"strict": False}})
    assert reply.status_code == 200, reply.text
    warnings = {(w["kind"], w["field"]): w["records"] for w in reply.json()["parameters"]["warnings"]}
    assert warnings == {("unknown_field", "id"): 1, ("unseen_category", "colour"): 1, ("out_of_range", "length"): 1}
    refused = signed.post("/v2/models/iris/infer", json={**request, "parameters": {"strict": "no"}})
    assert refused.status_code == 400 and "parameters.strict" in refused.json()["error"]


def test_oip_an_unknown_datatype_names_the_allowed_ones(signed):
    request = tensors(length=[1.4], width=[0.5], colour=["red"])
    request["inputs"][0]["datatype"] = "FOO"
    reply = signed.post("/v2/models/iris/infer", json=request)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert "unknown datatype 'FOO'" in error and "BYTES" in error and "FP64" in error and "INT64" in error
    matrix = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FOO", "data": [3, 70.5]}]}
    error = signed.post("/v2/models/houses/infer", json=matrix).json()["error"]
    assert "unknown datatype 'FOO'" in error and "not BYTES" not in error


def test_the_metadata_shows_the_signature_and_the_warnings_counted(signed):
    signed.post("/api/models/iris/predict", json={"records": [{"length": 1.4, "colour": "green"}] * 3})
    meta = signed.get("/v2/models/iris").json()
    colour = next(i for i in meta["inputs"] if i["name"] == "colour")
    assert colour["parameters"] == {"type": "category", "categories": ["blue", "red", "white"]}
    length = next(i for i in meta["inputs"] if i["name"] == "length")
    assert length["parameters"].keys() == {"type", "min", "max"}
    assert meta["parameters"]["warnings"] == {"missing": 3, "unseen_category": 3}
    assert meta["parameters"]["target"] == "species" and meta["platform"] == meta["parameters"]["runtime"] == "sklearn"
    old = signed.get("/v2/models/flowers").json()
    assert old["inputs"][0]["parameters"] == {"type": FLOWER_FEATURES[0]["type"]}
    stats = signed.get("/internal/warnings").json()
    assert stats["iris/1"] == {"missing": 3, "unseen_category": 3}

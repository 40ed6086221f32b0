"""The Open Inference Protocol v2 (KServe predict-api v2) on the inference app."""

import numpy as np
import pandas as pd
import pytest

from services.common.contracts.monitoring import is_prediction_id
from services.inference.domain.answers import (
    InferResponse,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from tests.fakes import FakeProbe

LENGTH, WIDTH, COLOUR = [1.4, 4.4, 6.1], [0.5, 1.4, 2.0], ["red", "white", "blue"]
FLOWERS = pd.DataFrame({"length": LENGTH, "width": WIDTH, "colour": pd.Series(COLOUR, dtype=object)})
HOUSES = pd.DataFrame({"rooms": [3.0, 4.0], "area": [70.5, 95.0]})


def columns(**extra):
    return {
        "id": "req-1",
        "inputs": [
            {"name": "length", "shape": [3], "datatype": "FP64", "data": LENGTH},
            {"name": "width", "shape": [3, 1], "datatype": "FP32", "data": [[w] for w in WIDTH]},
            {"name": "colour", "shape": [3], "datatype": "BYTES", "data": COLOUR},
        ],
        **extra,
    }


def test_infer_with_one_tensor_per_feature_gives_the_pipelines_predictions_and_probabilities(served):
    reply = served.post("/v2/models/flowers/infer", json=columns())
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("flowers", "1", "req-1")
    predict, proba = body["outputs"]
    assert predict == {
        "name": "predict",
        "shape": [3],
        "datatype": "BYTES",
        "data": served.flowers.predict(FLOWERS).tolist(),
    }
    assert proba["name"] == "predict_proba" and proba["shape"] == [3, 3] and proba["datatype"] == "FP64"
    assert proba["parameters"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert np.allclose(np.array(proba["data"]).reshape(3, 3), served.flowers.predict_proba(FLOWERS))


def test_infer_names_each_rows_prediction_in_its_parameters_and_echoes_the_requests_id(served):
    body = served.post("/v2/models/flowers/versions/1/infer", json=columns()).json()
    ids = body["parameters"]["prediction_ids"]
    assert body["id"] == "req-1" and len(ids) == 3 and all(is_prediction_id(i) for i in ids)
    assert ids == [f"{ids[0][:-2]}-{i}" for i in range(3)]  # one call, the rows in order
    anonymous = served.post("/v2/models/flowers/infer", json={"inputs": columns()["inputs"]}).json()
    assert len(anonymous["id"]) == 36  # none sent: a new one, as before
    assert not set(anonymous["parameters"]["prediction_ids"]) & set(ids)


def test_infer_with_one_2d_tensor_gives_the_same_predictions_as_per_column_tensors(served):
    matrix = {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [[3, 70.5], [4, 95.0]]}]}
    per_column = {
        "inputs": [
            {"name": "rooms", "shape": [2], "datatype": "INT64", "data": [3, 4]},
            {"name": "area", "shape": [2], "datatype": "FP64", "data": [70.5, 95.0]},
        ]
    }
    a = served.post("/v2/models/houses/versions/1/infer", json=matrix)
    b = served.post("/v2/models/houses/versions/champion/infer", json=per_column)
    assert a.status_code == b.status_code == 200
    assert a.json()["outputs"] == b.json()["outputs"]
    assert a.json()["outputs"][0]["data"] == pytest.approx(served.houses.predict(HOUSES).tolist())
    assert [o["name"] for o in a.json()["outputs"]] == ["predict"]


def test_requested_outputs_are_honoured(served):
    reply = served.post("/v2/models/flowers/infer", json=columns(outputs=[{"name": "predict_proba"}]))
    assert [o["name"] for o in reply.json()["outputs"]] == ["predict_proba"]
    houses = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [3, 70.5]}]}
    refused = served.post("/v2/models/houses/infer", json={**houses, "outputs": [{"name": "predict_proba"}]})
    assert refused.status_code == 400 and "unknown output 'predict_proba'" in refused.json()["error"]


def test_a_request_without_an_id_gets_one(served):
    body = columns()
    del body["id"]
    assert served.post("/v2/models/flowers/infer", json=body).json()["id"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda r: r["inputs"].pop(), "missing inputs ['colour']"),
        (lambda r: r["inputs"][0].update(shape=[4]), "needs 4 values"),
        (lambda r: r["inputs"][2].update(datatype="FP64", data=[1.0, 2.0, 3.0]), "send it as BYTES"),
        (lambda r: r["inputs"][0].update(data=["a", "b", "c"]), "is not FP64"),
        (lambda r: r["inputs"][1].update(shape=[2, 1], data=[[1.0], [2.0]]), "has 2 rows"),
        (lambda r: r.update(inputs="nope"), "invalid request"),
    ],
)
def test_a_bad_tensor_is_400_with_an_error_in_words(served, change, words):
    request = columns()
    change(request)
    reply = served.post("/v2/models/flowers/infer", json=request)
    assert reply.status_code == 400 and words in reply.json()["error"], reply.text


def test_an_unknown_model_or_version_is_404_with_an_error(served):
    for path in ("/v2/models/nothing/infer", "/v2/models/flowers/versions/7/infer"):
        reply = served.post(path, json=columns())
        assert reply.status_code == 404 and "error" in reply.json()
    assert served.get("/v2/models/nothing").status_code == 404
    assert served.get("/v2/models/nothing/ready").status_code == 404


def test_model_metadata_lists_each_feature_as_an_input_and_the_outputs(served):
    meta = served.get("/v2/models/flowers").json()
    assert meta["name"] == "flowers" and meta["versions"] == ["1"]
    assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
        ("length", "FP64", [-1, 1]),
        ("width", "FP64", [-1, 1]),
        ("colour", "BYTES", [-1, 1]),
    ]
    assert [(o["name"], o["shape"]) for o in meta["outputs"]] == [("predict", [-1]), ("predict_proba", [-1, 3])]
    assert served.get("/v2/models/houses/versions/1").json()["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1]}
    ]


def test_health_server_metadata_and_model_readiness(served):
    assert served.get("/v2/health/live").json() == {"live": True}
    assert served.get("/v2/health/ready").json() == {"ready": True}
    assert served.get("/v2").json()["name"] == "daprml-inference"
    assert served.get("/v2/models/flowers/ready").json() == {"name": "flowers", "version": "1", "ready": True}
    assert served.get("/v2/models/flowers/versions/1/ready").status_code == 200


def test_the_server_is_not_ready_without_its_sidecar(make_client):
    client = make_client("inference", probe=FakeProbe(healthy=False))
    assert client.get("/v2/health/ready").status_code == 503


def test_a_malformed_model_name_is_400_with_an_error(served):
    reply = served.get("/v2/models/NOT..valid")
    assert reply.status_code == 400 and "name" in reply.json()["error"]


def test_every_answer_is_exactly_what_the_openapi_document_says(served):
    """The routes build their answers as dicts (no validation on the way out, for speed): each
    kind is held here to the model the document shows, which allows no field it does not name."""
    houses = {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [[3, 70.5], [4, 95.0]]}]}
    unknown = columns(parameters={"strict": False})
    unknown["inputs"].append({"name": "extra", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]})
    answers = {
        ServerLive: [served.get("/v2/health/live")],
        ServerReady: [served.get("/v2/health/ready")],
        ServerMetadata: [served.get("/v2")],
        ModelMetadata: [served.get("/v2/models/flowers"), served.get("/v2/models/houses/versions/1")],
        ModelReady: [served.get("/v2/models/flowers/ready"), served.get("/v2/models/flowers/versions/1/ready")],
        InferResponse: [
            served.post("/v2/models/flowers/infer", json=columns()),
            served.post("/v2/models/flowers/infer", json=unknown),  # with warnings in its parameters
            served.post("/v2/models/flowers/infer", json=columns(outputs=[{"name": "predict_proba"}])),
            served.post("/v2/models/houses/versions/1/infer", json=houses),
        ],
    }
    for model, replies in answers.items():
        for reply in replies:
            assert reply.status_code == 200, reply.text
            model.model_validate(reply.json())
    assert "warnings" in answers[InferResponse][1].json()["parameters"]
    # What the document says of infer is that model, whole.
    documented = served.app.openapi()["paths"]["/v2/models/{name}/infer"]["post"]["responses"]["200"]
    assert documented["content"]["application/json"]["schema"]["$ref"].endswith("/InferResponse")

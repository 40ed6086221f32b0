"""The inference app's JSON predict API and its Open Inference Protocol v2 routes, over real
skops files of small pipelines fitted in the test, served by a fake registry."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from services.common.contracts.monitoring import is_prediction_id
from services.inference.app import create_app
from services.inference.dataplane import DataPlane
from services.inference.ports import InferencePorts
from services.inference.settings import Settings
from tests.fakes import fake_ports
from tests.unit.inference.models import FLOWER_FEATURES, HOUSE_FEATURES, Registry, flower_model, house_model

ROWS = [
    {"length": 1.4, "width": 0.5, "colour": "red"},
    {"length": 4.4, "width": 1.4, "colour": "white"},
    {"length": 6.1, "width": 2.0, "colour": "blue"},
    {"length": 5.0},  # width and colour missing: imputed
]


def frame(rows, names):
    return pd.DataFrame({n: [r.get(n, np.nan) for r in rows] for n in names}).astype(
        {n: object for n in names if n == "colour"}
    )


def test_json_predict_gives_the_pipelines_predictions_and_probabilities_keyed_by_class(served):
    reply = served.post("/api/models/flowers/predict", json={"records": ROWS})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    X = frame(ROWS, ["length", "width", "colour"])
    assert (body["model"], body["version"]) == ("flowers", 1)
    assert body["predictions"] == served.flowers.predict(X).tolist()
    expected = served.flowers.predict_proba(X)
    assert [list(p) for p in body["probabilities"]] == [["setosa", "versicolor", "virginica"]] * len(ROWS)
    assert np.allclose([list(p.values()) for p in body["probabilities"]], expected)


def test_json_predict_names_each_records_prediction_in_record_order_with_ids_no_other_call_has(served):
    first = served.post("/api/models/flowers/predict", json={"records": ROWS}).json()
    again = served.post("/api/models/flowers/predict", json={"records": ROWS[:2]}).json()
    ids = first["prediction_ids"]
    assert len(ids) == len(first["predictions"]) == len(ROWS) and all(is_prediction_id(i) for i in ids)
    call = ids[0].rsplit("-", 1)[0]
    assert ids == [f"{call}-{i}" for i in range(len(ROWS))]  # one call, the records in order
    assert len(again["prediction_ids"]) == 2 and not set(ids) & set(again["prediction_ids"])


def test_json_predict_of_a_regressor_by_version_number_has_no_probabilities(served):
    reply = served.post("/api/models/houses/predict", json={"records": [{"rooms": 3, "area": 70.5}], "version": 1})
    assert reply.status_code == 200
    assert "probabilities" not in reply.json()
    assert reply.json()["predictions"] == pytest.approx(
        served.houses.predict(pd.DataFrame({"rooms": [3.0], "area": [70.5]})).tolist()
    )


def test_a_wrong_typed_value_is_422_naming_the_record_and_the_field(served):
    reply = served.post("/api/models/flowers/predict", json={"records": [ROWS[0], {"length": "long"}]})
    assert reply.status_code == 422
    assert reply.json()["record"] == 1 and reply.json()["field"] == "length"
    assert "record 1, field 'length'" in reply.json()["detail"]


def test_an_unknown_model_or_version_is_404(served):
    assert served.post("/api/models/nothing/predict", json={"records": ROWS}).status_code == 404
    assert served.post("/api/models/flowers/predict", json={"records": ROWS, "version": 9}).status_code == 404
    assert served.post("/api/models/flowers/predict", json={"records": ROWS, "alias": "nobody"}).status_code == 404


def test_too_many_records_are_refused(served):
    limit = served.app.state.settings.max_records
    reply = served.post("/api/models/houses/predict", json={"records": [{"rooms": 1}] * (limit + 1)})
    assert reply.status_code == 413 and str(limit) in reply.json()["detail"]


def test_a_version_and_an_alias_together_or_no_records_are_422(served):
    assert (
        served.post("/api/models/flowers/predict", json={"records": ROWS, "version": 1, "alias": "x"}).status_code
        == 422
    )
    assert served.post("/api/models/flowers/predict", json={"records": []}).status_code == 422


def test_a_tampered_artifact_is_a_500_that_says_so_and_a_loaded_version_keeps_serving(make_client):
    registry = Registry()
    registry.add("flowers", 1, flower_model(), FLOWER_FEATURES, aliases=("champion",))
    client = make_client("inference", invoker=registry.invoker)
    assert client.post("/api/models/flowers/predict", json={"records": ROWS}).json()["version"] == 1
    registry.add("flowers", 2, flower_model(c=0.5), FLOWER_FEATURES, served=b"PK\x03\x04 altered")
    registry.alias("flowers", "champion", 2)

    refused = client.post("/api/models/flowers/predict", json={"records": ROWS, "version": 2})
    assert refused.status_code == 500 and "sha256" in refused.json()["detail"]
    assert "not loaded or served" in refused.json()["detail"]
    kept = client.post("/api/models/flowers/predict", json={"records": ROWS})  # champion: 2, unloadable
    assert kept.status_code == 200 and kept.json()["version"] == 1
    assert client.post("/api/models/flowers/predict", json={"records": ROWS, "version": 1}).status_code == 200
    v2 = client.post(
        "/v2/models/flowers/versions/2/infer",
        json={"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
    )
    assert v2.status_code == 500 and "sha256" in v2.json()["error"]


def test_the_number_of_loaded_models_stays_within_its_bound(make_client):
    registry = Registry()
    for v in (1, 2, 3):
        registry.add("houses", v, house_model(), HOUSE_FEATURES)
    app = create_app(Settings(max_loaded_models=2), fake_ports(InferencePorts, invoker=registry.invoker))
    with TestClient(app) as client:
        for v in (1, 2, 3, 1):
            assert (
                client.post("/api/models/houses/predict", json={"records": [{"rooms": 2}], "version": v}).status_code
                == 200
            )
        assert app.state.services[DataPlane].loaded == [("houses", 3), ("houses", 1)]
    assert len(registry.artifact_calls()) == 4  # 1 was unloaded by 3 and loaded again

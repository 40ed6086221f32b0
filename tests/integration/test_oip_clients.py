"""A real Open Inference Protocol v2 client, Triton's tritonclient.http, unchanged against the
real stack: through the gateway, and straight at the inference app through its sidecar's invoke
URL (a base path in the client's url). Every answer is checked against the JSON predict API's
for the same rows of the same model version.

The client's default for tensors is Triton's binary data extension, which the server does not
offer (its metadata lists no extensions): these tests send and ask for JSON data
(binary_data=False), as the protocol's REST binding defines it.

Each infer test runs twice: with the client as it is (which sends no Content-Type, and fails on
a bug in inference: see NO_CONTENT_TYPE) and with the one header added, which checks the rest.
"""

import io
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as httpclient
from tritonclient._plugin import InferenceServerClientPlugin
from tritonclient.utils import InferenceServerException

from scripts.stack import Stack
from tests.integration.test_metrics import sample, scraped
from tests.integration.test_training import commit, finished_job, iris_csv, unique

pytestmark = pytest.mark.integration
COLOURS = ("red", "green", "blue")


@pytest.fixture
def headers() -> None:
    """What a test adds to an infer request: nothing, as the client sends it (it sends no
    Content-Type, which inference must accept). The key or token goes by a client plugin."""
    return None


class Sending(InferenceServerClientPlugin):
    """Adds headers to every request, as a user of the client authenticates with it."""

    def __init__(self, headers: dict[str, str]):
        self.headers = headers

    def __call__(self, request) -> None:
        request.headers.update(self.headers)


@dataclass(frozen=True)
class Champion:
    """A trained model, version 1 and champion, with rows to ask about and what the JSON API
    answers for them."""

    name: str
    datatypes: dict[str, str]  # feature -> the datatype its tensor takes, in the model's order
    rows: pd.DataFrame
    predictions: list[Any]
    classes: list[str]
    probabilities: np.ndarray  # [rows, classes], columns in the order of `classes`


def mixed_frame() -> pd.DataFrame:
    """A category feature and two numeric ones, the class mostly decided by colour and size."""
    rng = np.random.default_rng(7)
    n = 240
    colour = rng.choice(COLOURS, n)
    size = rng.normal(10, 3, n).round(3)
    weight = rng.normal(50, 10, n).round(2)
    score = (colour == "red") * 2.0 + (size - 10) / 3 + rng.normal(0, 0.5, n)
    target = np.where(score > 1.5, "high", np.where(score > -0.5, "mid", "low"))
    return pd.DataFrame({"colour": colour, "size": size, "weight": weight, "target": target})


def _champion(api: httpx.Client, name: str, rows: pd.DataFrame, datatypes: dict[str, str]) -> Champion:
    (job,) = finished_job(api, name, timeout_s=180)
    assert job["status"] == "COMPLETED", job
    assert api.get(f"/api/models/{name}").json()["aliases"] == {"champion": 1}
    reply = api.post(f"/api/models/{name}/predict", json={"records": rows.to_dict("records")})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["model"], answer["version"], len(answer["predictions"])) == (name, 1, len(rows)), answer
    classes = sorted(answer["probabilities"][0])
    probabilities = np.array([[p[c] for c in classes] for p in answer["probabilities"]])
    return Champion(name, datatypes, rows, answer["predictions"], classes, probabilities)


@pytest.fixture(scope="module")
def api(stack: Stack):
    with stack.gateway() as client:
        yield client


@pytest.fixture(scope="module")
def champions(api: httpx.Client) -> dict[str, Champion]:
    """Two champions on the session stack: 'mixed' (a category and two numbers) and 'numeric'
    (iris, four numbers); both committed first so that they train side by side."""
    mixed, numeric = unique("oip-mixed"), unique("oip-iris")
    frame = mixed_frame()
    commit(api, mixed, frame.to_csv(index=False).encode())
    commit(api, numeric, iris_csv())
    asked = pd.concat([frame[frame["colour"] == c].head(2) for c in COLOURS]).drop(columns="target")
    iris = pd.read_csv(io.BytesIO(iris_csv()))
    iris_rows = iris.iloc[[0, 1, 50, 51, 100, 101]].drop(columns="target")
    mixed_types = {"colour": "BYTES", "size": "FP64", "weight": "FP64"}
    return {
        "mixed": _champion(api, mixed, asked.reset_index(drop=True), mixed_types),
        "numeric": _champion(api, numeric, iris_rows.reset_index(drop=True), dict.fromkeys(iris_rows.columns, "FP64")),
    }


@pytest.fixture(scope="module")
def mixed(champions: dict[str, Champion]) -> Champion:
    return champions["mixed"]


@pytest.fixture(scope="module")
def numeric(champions: dict[str, Champion]) -> Champion:
    return champions["numeric"]


def _client(url: str, headers: dict[str, str]):
    client = httpclient.InferenceServerClient(url=url, connection_timeout=60, network_timeout=60)
    client.register_plugin(Sending(headers))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def triton(stack: Stack):
    """Pointed at the gateway's host:port, as a user would."""
    yield from _client(stack.gateway_url.removeprefix("http://"), {"Authorization": f"Bearer {stack.admin_key}"})


@pytest.fixture(scope="module")
def triton_via_sidecar(stack: Stack):
    """Pointed at the inference app through its own sidecar's invoke URL."""
    inference = stack.app("inference")
    url = f"127.0.0.1:{inference.http_port}/v1.0/invoke/{inference.app_id}/method"
    yield from _client(url, stack.sidecar_headers())


def tensors(champion: Champion, rows: pd.DataFrame | None = None) -> list[httpclient.InferInput]:
    """One [rows, 1] input per feature: BYTES for the category, FP64 for numbers."""
    rows = champion.rows if rows is None else rows
    out = []
    for name, datatype in champion.datatypes.items():
        values = rows[name].to_numpy(dtype=object if datatype == "BYTES" else np.float64).reshape(-1, 1)
        tensor = httpclient.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=False)
        out.append(tensor)
    return out


def wanted(*names: str) -> list[httpclient.InferRequestedOutput]:
    return [httpclient.InferRequestedOutput(name, binary_data=False) for name in names]


def assert_answers_like_the_json_api(result: httpclient.InferResult, champion: Champion) -> None:
    response = result.get_response()
    assert (response["model_name"], response["model_version"]) == (champion.name, "1"), response
    assert response["parameters"]["runtime"] == "onnxruntime"  # training's default model, compiled
    outputs = {o["name"]: o for o in response["outputs"]}
    assert set(outputs) == {"predict", "predict_proba"}
    n, k = len(champion.rows), len(champion.classes)
    assert (outputs["predict"]["datatype"], outputs["predict"]["shape"]) == ("BYTES", [n])
    assert (outputs["predict_proba"]["datatype"], outputs["predict_proba"]["shape"]) == ("FP64", [n, k])
    predicted = result.as_numpy("predict")
    assert predicted.shape == (n,) and predicted.tolist() == champion.predictions
    classes = outputs["predict_proba"]["parameters"]["classes"]
    assert sorted(classes) == champion.classes
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (n, k) and proba.dtype == np.float64
    in_our_order = proba[:, [classes.index(c) for c in champion.classes]]
    np.testing.assert_allclose(in_our_order, champion.probabilities, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


# Through the gateway ----------------------------------------------------------------------------


def test_the_server_is_live_and_ready_and_describes_itself(triton):
    assert triton.is_server_live() is True
    assert triton.is_server_ready() is True
    metadata = triton.get_server_metadata()
    assert metadata["name"] == "daprml-inference"
    assert isinstance(metadata["version"], str) and metadata["version"]
    assert metadata["extensions"] == []


def test_the_champion_is_ready_by_name_and_by_version(triton, mixed):
    assert triton.is_model_ready(mixed.name) is True
    assert triton.is_model_ready(mixed.name, model_version="1") is True
    assert triton.is_model_ready(mixed.name, model_version="2") is False


def test_model_metadata_has_one_input_per_feature_with_its_datatype(triton, mixed, numeric):
    for champion in (mixed, numeric):
        metadata = triton.get_model_metadata(champion.name)
        assert (metadata["name"], metadata["versions"], metadata["platform"]) == (champion.name, ["1"], "onnxruntime")
        inputs = metadata["inputs"]
        assert [{k: i[k] for k in ("name", "datatype", "shape")} for i in inputs] == [
            {"name": name, "datatype": datatype, "shape": [-1, 1]} for name, datatype in champion.datatypes.items()
        ]
        # Each input carries its signature as training saw it (issue 19's model contract).
        for i in inputs:
            signature = i["parameters"]
            assert ("categories" in signature) == (signature["type"] == "category"), i
            assert ("min" in signature and "max" in signature) == (signature["type"] in ("number", "integer")), i
        assert metadata["outputs"] == [
            {"name": "predict", "datatype": "BYTES", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(champion.classes)]},
        ]
        assert triton.get_model_metadata(champion.name, model_version="1") == metadata


def test_infer_one_tensor_per_feature_answers_as_the_json_api(triton, headers, mixed, numeric):
    for champion in (mixed, numeric):
        result = triton.infer(
            champion.name,
            tensors(champion),
            outputs=wanted("predict", "predict_proba"),
            request_id="r-1",
            headers=headers,
        )
        assert result.get_response()["id"] == "r-1"
        assert_answers_like_the_json_api(result, champion)


def test_infer_against_an_explicit_version(triton, headers, mixed):
    outputs = wanted("predict", "predict_proba")
    result = triton.infer(mixed.name, tensors(mixed), model_version="1", outputs=outputs, headers=headers)
    assert_answers_like_the_json_api(result, mixed)


def test_infer_with_only_predict_asked_answers_only_predict(triton, headers, mixed):
    result = triton.infer(mixed.name, tensors(mixed), outputs=wanted("predict"), headers=headers)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["predict"]
    assert result.as_numpy("predict").tolist() == mixed.predictions
    assert result.as_numpy("predict_proba") is None


def test_a_numeric_only_model_takes_one_2d_tensor(triton, headers, numeric):
    values = numeric.rows.to_numpy(dtype=np.float64)
    tensor = httpclient.InferInput("input-0", list(values.shape), "FP64")
    tensor.set_data_from_numpy(values, binary_data=False)
    result = triton.infer(numeric.name, [tensor], outputs=wanted("predict", "predict_proba"), headers=headers)
    assert_answers_like_the_json_api(result, numeric)


# Straight at inference, through the sidecars ------------------------------------------------------


def test_the_client_reads_through_the_inference_sidecars_invoke_url(triton_via_sidecar, mixed):
    assert triton_via_sidecar.is_server_live() is True
    assert triton_via_sidecar.is_server_ready() is True
    assert triton_via_sidecar.get_server_metadata()["name"] == "daprml-inference"
    assert triton_via_sidecar.is_model_ready(mixed.name, model_version="1") is True
    metadata = triton_via_sidecar.get_model_metadata(mixed.name)
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == list(mixed.datatypes.items())


def test_the_client_infers_through_the_inference_sidecars_invoke_url(triton_via_sidecar, headers, mixed, numeric):
    for champion in (mixed, numeric):
        outputs = wanted("predict", "predict_proba")
        result = triton_via_sidecar.infer(champion.name, tensors(champion), outputs=outputs, headers=headers)
        assert_answers_like_the_json_api(result, champion)


def test_plain_http_through_the_gateways_sidecar_answers_the_same(stack, mixed):
    gateway, inference = stack.app("gateway"), stack.app("inference")
    url = f"http://127.0.0.1:{gateway.http_port}/v1.0/invoke/{inference.app_id}/method/v2/models/{mixed.name}/infer"
    body = {
        "id": "plain",
        "inputs": [
            {"name": name, "shape": [len(mixed.rows), 1], "datatype": datatype, "data": mixed.rows[name].tolist()}
            for name, datatype in mixed.datatypes.items()
        ],
    }
    reply = httpx.post(url, json=body, timeout=60, headers=stack.sidecar_headers())
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (mixed.name, "1", "plain")
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["predict"] == {
        "name": "predict",
        "shape": [len(mixed.rows)],
        "datatype": "BYTES",
        "data": mixed.predictions,
    }
    proba = outputs["predict_proba"]
    classes = proba["parameters"]["classes"]
    matrix = np.array(proba["data"]).reshape(proba["shape"])[:, [classes.index(c) for c in mixed.classes]]
    np.testing.assert_allclose(matrix, mixed.probabilities, rtol=0, atol=1e-12)


# Errors through the gateway -------------------------------------------------------------------------


def refused(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    error = caught.value
    # The message is the body's "error": the client found one in the protocol's error shape.
    assert error.debug_details() is None, error.debug_details()
    return error


def test_infer_on_an_unknown_model_is_a_404(triton, headers, mixed):
    missing = unique("oip-missing")
    error = refused(lambda: triton.infer(missing, tensors(mixed), headers=headers))
    assert error.status() == "404" and missing in error.message(), error


def test_an_unknown_model_has_no_metadata_and_is_not_ready(triton):
    missing = unique("oip-missing")
    error = refused(lambda: triton.get_model_metadata(missing))
    assert error.status() == "404" and missing in error.message(), error
    assert triton.is_model_ready(missing) is False


def test_an_unknown_version_is_a_404(triton, headers, mixed):
    error = refused(lambda: triton.infer(mixed.name, tensors(mixed), model_version="9", headers=headers))
    assert error.status() == "404", error
    error = refused(lambda: triton.get_model_metadata(mixed.name, model_version="9"))
    assert error.status() == "404", error


def test_a_number_sent_as_bytes_is_a_400_naming_the_input(triton, headers, mixed):
    inputs = tensors(mixed)
    values = mixed.rows["size"].astype(str).to_numpy(dtype=object).reshape(-1, 1)
    inputs[1] = httpclient.InferInput("size", list(values.shape), "BYTES")
    inputs[1].set_data_from_numpy(values, binary_data=False)
    error = refused(lambda: triton.infer(mixed.name, inputs, headers=headers))
    assert error.status() == "400", error
    assert error.message() == "input 'size' is a number feature: send it as FP64, not BYTES"


def test_a_missing_input_is_a_400_naming_it(triton, headers, mixed):
    inputs = [t for t in tensors(mixed) if t.name() != "weight"]
    error = refused(lambda: triton.infer(mixed.name, inputs, headers=headers))
    assert error.status() == "400", error
    assert "missing inputs ['weight']" in error.message(), error


def test_errors_come_in_the_protocols_shape(api, mixed):
    reply = api.post(f"/v2/models/{mixed.name}/infer", json={"inputs": [{"name": "colour"}]})
    assert reply.status_code == 400
    assert list(reply.json()) == ["error"] and reply.json()["error"].startswith("invalid request"), reply.text


def test_a_name_against_the_naming_rule_is_a_400_in_the_protocols_shape_from_inference(triton_via_sidecar):
    error = refused(lambda: triton_via_sidecar.get_model_metadata("Not.A.Name"))
    assert error.status() == "400" and error.message().startswith("invalid request: path name"), error


def test_a_name_against_the_naming_rule_is_a_400_in_the_protocols_shape_from_the_gateway(triton):
    error = refused(lambda: triton.get_model_metadata("Not.A.Name"))
    assert error.status() == "400" and error.message().startswith("invalid request: path name"), error


def test_without_a_key_the_client_reads_the_gateways_401(stack):
    client = httpclient.InferenceServerClient(url=stack.gateway_url.removeprefix("http://"))
    try:
        error = refused(lambda: client.get_model_metadata("anything"))
    finally:
        client.close()
    assert error.status() == "401" and "API key is required" in error.message()


# Metrics ------------------------------------------------------------------------------------------


def test_after_n_predictions_through_the_gateway_the_models_counter_rose_by_n(stack, api, mixed):
    labels = {"model": mixed.name, "version": "1", "outcome": "success"}
    route = {"route": "/api/models/{name}/predict", "method": "POST"}
    before = scraped(stack, "inference")
    n = 25
    for _ in range(n):
        reply = api.post(f"/api/models/{mixed.name}/predict", json={"records": mixed.rows.to_dict("records")})
        assert reply.status_code == 200, reply.text
    after = scraped(stack, "inference")
    assert (
        sample(after, "daprml_inference_requests_total", **labels)
        - sample(before, "daprml_inference_requests_total", **labels)
        == n
    )
    rows = {"model": mixed.name, "version": "1"}
    assert sample(after, "daprml_inference_rows_total", **rows) - sample(
        before, "daprml_inference_rows_total", **rows
    ) == n * len(mixed.rows)
    counted = "daprml_http_request_duration_seconds_count"
    assert sample(after, counted, **route) - sample(before, counted, **route) == n
    # The gateway counts the same calls under its own route template.
    assert sample(scraped(stack, "gateway"), counted, **route) >= n


def test_metrics_are_not_reachable_through_the_gateways_public_port(stack, api):
    for path in ("/metrics", "/api/metrics/../../metrics", "/v2/metrics"):
        assert api.get(path).status_code in (401, 404), path
    assert "daprml_" not in api.get("/metrics").text

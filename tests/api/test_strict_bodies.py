"""A body field of the wrong JSON type is refused, not coerced: pydantic's default mode would
take 0 for false, true for 1 and "50" for 50, so a client's mistake would pass as something
it did not mean, and the OpenAPI document (boolean, integer, number) would not be what is
checked. Schemathesis' negative_data_rejection found the first one (tests/integration/test_openapi.py)."""

import pytest

CASES = [
    ("training", "PUT", "/api/training/policies/iris", {"auto_train": 0}, "auto_train"),
    ("training", "POST", "/api/training/jobs", {"dataset": "iris", "version": True}, "version"),
    ("registry", "PUT", "/api/models/iris/aliases/champion", {"version": "2"}, "version"),
    ("registry", "PUT", "/api/models/iris/policy", {"first_champion": 1}, "first_champion"),
    ("registry", "PUT", "/api/models/iris/traffic", {"canary": [{"version": 2, "percent": True}]}, "percent"),
    ("registry", "POST", "/api/models/iris/rollouts", {"candidate": 2, "plan": [{"promote": 1}]}, "promote"),
    ("registry", "POST", "/api/models/iris/rollouts", {"candidate": "2", "plan": [{"promote": True}]}, "candidate"),
    ("inference", "POST", "/api/models/iris/predict", {"records": [{"x": 1}], "strict": 0}, "strict"),
    ("inference", "POST", "/api/models/iris/predict", {"records": [{"x": 1}], "version": 1.0}, "version"),
    ("monitor", "PUT", "/api/models/iris/monitoring", {"min_rows": "50"}, "min_rows"),
    ("monitor", "PUT", "/api/models/iris/monitoring", {"drift_threshold": True}, "drift_threshold"),
]


@pytest.mark.parametrize(("service", "method", "path", "body", "field"), CASES)
def test_a_field_of_the_wrong_json_type_is_a_422_naming_it(make_client, service, method, path, body, field):
    reply = make_client(service).request(method, path, json=body)
    assert reply.status_code == 422, reply.text
    assert field in reply.text


def test_an_oip_tensor_shape_of_booleans_is_refused():
    from services.inference.domain.tensors import Tensor

    with pytest.raises(ValueError, match="shape"):
        Tensor.model_validate_json('{"name": "x", "shape": [true], "datatype": "FP64", "data": [1]}')

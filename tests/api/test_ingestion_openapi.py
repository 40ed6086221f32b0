"""Every ingestion route documents what it answers, so /docs shows the schemas."""

import pytest


@pytest.fixture
def openapi(make_client):
    return make_client("ingestion").get("/openapi.json").json()


def test_every_ingestion_route_documents_its_answer(openapi):
    expected = {
        ("post", "/api/datasets"): "DatasetRecord",
        ("get", "/api/datasets"): "DatasetList",
        ("get", "/api/datasets/{name}"): "DatasetInfo",
        ("post", "/api/datasets/{name}/versions"): "UploadResult",
        ("post", "/api/datasets/{name}/uploads"): "UploadState",
        ("get", "/api/datasets/{name}/uploads/{upload_id}"): "UploadState",
        ("put", "/api/datasets/{name}/uploads/{upload_id}/parts/{number}"): "PartResult",
        ("post", "/api/datasets/{name}/uploads/{upload_id}/commit"): "CommitResult",
        ("get", "/api/datasets/{name}/versions/{version}"): "Manifest",
        ("get", "/api/datasets/{name}/versions/{version}/rows"): "RowsPage",
    }
    found = {}
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/api/datasets"):
                continue
            success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            content = success.get("content", {})
            if "application/json" in content:
                found[(method, path)] = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            else:
                found[(method, path)] = sorted(content)
    assert found == expected | {
        ("delete", "/api/datasets/{name}/uploads/{upload_id}"): [],
        ("get", "/api/datasets/{name}/versions/{version}/data"): ["application/vnd.apache.parquet", "text/csv"],
    }
    assert "outbox" not in openapi["components"]["schemas"]["DatasetInfo"]["properties"]

"""The public API and the events do not change by accident. Every service's OpenAPI document
(the gateway's is the public one, the others are what services call each other with) and the
events' JSON schemas are compared with snapshots committed under tests/snapshots/. A change
on purpose regenerates them (`python -m tests.api.test_public_contract`) and says so in its
commit; a diff here otherwise means a client somewhere breaks."""

import json
import sys
from pathlib import Path

import pytest

from services.common import events
from services.gateway import forwarded_docs

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
SERVICES = ("gateway", "ingestion", "training", "registry", "inference", "monitor")
BEHIND = SERVICES[1:]  # the services the gateway forwards to
EVENTS = SNAPSHOTS / "events.schema.json"


def openapi(service: str) -> dict:
    from tests.api.conftest import FACTORIES
    from tests.fakes import fake_ports

    create_app, ports = FACTORIES[service]
    # The document as /openapi.json serves it, without starting the app (training would start
    # its fit workers).
    document: dict = json.loads(json.dumps(create_app(ports=fake_ports(ports)).openapi()))
    return document


def snapshot(service: str) -> Path:
    return SNAPSHOTS / f"{service}.openapi.json"


def _diff(old: dict, new: dict, at: str = "") -> list[str]:
    """Where two JSON documents differ, as paths, so a failure names what changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in new:
                out.append(f"removed {at}/{key}")
            elif key not in old:
                out.append(f"added {at}/{key}")
            else:
                out += _diff(old[key], new[key], f"{at}/{key}")
        return out
    return [] if old == new else [f"changed {at}"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_openapi_document_matches_the_snapshot(service):
    changes = _diff(json.loads(snapshot(service).read_text()), openapi(service))
    assert changes == [], "the public API changed; if on purpose, regenerate the snapshot:\n" + "\n".join(changes)


def forwarded(documents: dict[str, dict] | None = None) -> dict:
    """What the gateway's document takes from the services': their success responses (from
    `documents`, each service's by name, when the caller has them already)."""
    documents = documents or {service: openapi(service) for service in SERVICES}
    gateway = documents["gateway"]
    operations = {(method.upper(), path) for path, methods in gateway["paths"].items() for method in methods}
    return forwarded_docs.extract({service: documents[service] for service in BEHIND}, operations)


def test_the_gateway_documents_what_each_service_it_forwards_to_answers():
    changes = _diff(json.loads(forwarded_docs.FILE.read_text()), forwarded())
    assert changes == [], "a service's answers changed; regenerate (python -m tests.api.test_public_contract):\n" + (
        "\n".join(changes)
    )


def test_every_forwarded_operation_documents_its_success_as_its_service_does():
    documents = {service: openapi(service) for service in SERVICES}
    gateway = documents["gateway"]
    found = forwarded(documents)["operations"]
    for key, entry in found.items():
        method, path = key.split(" ", 1)
        mine = {s: r for s, r in gateway["paths"][path][method.lower()]["responses"].items() if s.startswith("2")}
        theirs = documents[entry["service"]]["paths"][path][method.lower()]["responses"]
        assert set(mine) == {s for s in theirs if s.startswith("2")}, key
        for status, response in mine.items():
            assert response.keys() == theirs[status].keys() and response["description"] == theirs[status]["description"]
        # The body the service reads, as it declares it (its schemas under the same names, or
        # "<service>.<name>" where the gateway's document has another by that name).
        body, their_body = gateway["paths"][path][method.lower()].get("requestBody"), entry.get("requestBody")
        if their_body is not None:
            assert body is not None and body.keys() == their_body.keys(), key
            assert body["content"].keys() == their_body["content"].keys(), key
            schema, their_schema = (
                body["content"]["application/json"]["schema"],
                their_body["content"]["application/json"]["schema"],
            )
            assert schema.get("$ref", "").rsplit(".", 1)[-1] == their_schema.get("$ref", "").rsplit(".", 1)[-1], key
        # An error the service answers with a model of its own: either body, the gateway's or its.
        for status, response in entry.get("errors", {}).items():
            theirs_ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            either = gateway["paths"][path][method.lower()]["responses"][status]["content"]["application/json"]
            assert [s.get("$ref", "").rsplit("/", 1)[-1] for s in either["schema"]["anyOf"]][1] == theirs_ref, key
    assert "503" in found["GET /v2/health/ready"]["errors"]  # {"ready": false}
    assert {k for k, e in found.items() if "requestBody" in e} >= {
        "POST /api/models/{name}/predict",
        "POST /v2/models/{name}/infer",
        "POST /api/training/jobs",
        "PUT /api/models/{name}/traffic",
        "POST /api/models/{name}/rollouts",
        "PUT /api/models/{name}/monitoring",
    }
    # Every forwarded operation the gateway has: the /api ones of the five services and /v2.
    forwarding = [p for p in gateway["paths"] if p.startswith(("/api/datasets", "/api/training", "/v2"))]
    assert all(f"{m.upper()} {p}" in found for p in forwarding for m in gateway["paths"][p]), forwarding
    assert "GET /api/models/{name}" in found and "POST /api/models/{name}/predict" in found


def test_the_event_schemas_match_the_snapshot():
    changes = _diff(json.loads(EVENTS.read_text()), events.json_schemas())
    assert changes == [], "an event changed; if on purpose, regenerate the snapshot:\n" + "\n".join(changes)


def test_the_diff_names_what_changed():
    assert _diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 2}, "d": 0}) == ["changed /a/b", "removed /a/c", "added /d"]


def main() -> int:
    SNAPSHOTS.mkdir(exist_ok=True)
    # First: the gateway's document includes it.
    forwarded_docs.FILE.write_text(json.dumps(forwarded(), indent=1, sort_keys=True) + "\n")
    forwarded_docs._stored.cache_clear()
    for service in SERVICES:
        snapshot(service).write_text(json.dumps(openapi(service), indent=1, sort_keys=True) + "\n")
    EVENTS.write_text(json.dumps(events.json_schemas(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(SERVICES)} OpenAPI documents and {EVENTS.name} under {SNAPSHOTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Whatever arrives, ingestion answers with a status, never a crash (500), and a refused body
stores nothing. Random bodies from a fixed seed, so a failure can be replayed."""

import json
import random

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import IngestionPorts, create_app
from services.ingestion.settings import Settings
from tests.fakes import fake_ports

PIECES = ["a", "b", "y", "1", "-2.5", "1e3", "NA", "", " ", '"', '""', ",", "\n", "\r\n", "true", "x,y",
          "\ufeff", "é", "\x00", "nan", "inf", "99999999999999999999", "{", "[", "null"]


def bodies(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.choice(["csv", "json", "ndjson", "bytes"])
        if kind == "bytes":
            yield "text/csv", bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        elif kind == "csv":
            text = "a,y\n" + "".join(rng.choice(PIECES) for _ in range(rng.randrange(40)))
            yield "text/csv", text.encode("utf-8", "surrogatepass")
        else:
            records = [{rng.choice(["a", "y", "z"]): rng.choice([1, -2.5, "x", None, True, [1], {"k": 1}, "NA"])
                        for _ in range(rng.randrange(4))} for _ in range(rng.randrange(5))]
            if kind == "json":
                yield "application/json", json.dumps(rng.choice([records, records[:1], {"a": 1}, 3])).encode()
            else:
                yield "application/x-ndjson", "\n".join(json.dumps(r) for r in records).encode()


@pytest.mark.parametrize("seed", range(4))
def test_random_bodies_never_crash_and_refusals_store_nothing(seed):
    with TestClient(create_app(Settings(outbox_interval_s=3600), fake_ports(IngestionPorts))) as client:
        ports = client.app.state.ports
        for content_type, body in bodies(seed, 60):
            before = (dict(ports.state.items), dict(ports.blobs.blobs))
            reply = client.post("/api/datasets/fuzz/versions?target=y", content=body,
                                headers={"content-type": content_type})
            assert reply.status_code < 500, (body, reply.text)
            assert reply.json().get("detail") or reply.status_code in (200, 201), (body, reply.text)
            if reply.status_code >= 400:
                assert (ports.state.items, ports.blobs.blobs) == before, (body, reply.text)

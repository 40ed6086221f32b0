"""Whatever arrives, ingestion answers with a status, never a crash (500), and a refused body
stores nothing. Random bodies from a fixed seed, so a failure can be replayed."""

import csv
import io
import json
import random

import pytest
from fastapi.testclient import TestClient

from services.ingestion.app import IngestionPorts, create_app
from services.ingestion.settings import Settings
from tests.fakes import fake_ports

PIECES = [
    "a",
    "b",
    "y",
    "1",
    "-2.5",
    "1e3",
    "NA",
    "",
    " ",
    '"',
    '""',
    ",",
    "\n",
    "\r\n",
    "true",
    "x,y",
    "\ufeff",
    "é",
    "\x00",
    "nan",
    "inf",
    "99999999999999999999",
    "{",
    "[",
    "null",
]


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
            records = [
                {
                    rng.choice(["a", "y", "z"]): rng.choice([1, -2.5, "x", None, True, [1], {"k": 1}, "NA"])
                    for _ in range(rng.randrange(4))
                }
                for _ in range(rng.randrange(5))
            ]
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
            reply = client.post(
                "/api/datasets/fuzz/versions?target=y", content=body, headers={"content-type": content_type}
            )
            assert reply.status_code < 500, (body, reply.text)
            assert reply.json().get("detail") or reply.status_code in (200, 201), (body, reply.text)
            if reply.status_code >= 400:
                assert (ports.state.items, ports.blobs.blobs) == before, (body, reply.text)


# Values past what a reader or a number type can take, and text a spreadsheet would run.
EXTREMES = [
    "inf",
    "-Infinity",
    "1e309",
    "-1e309",
    "1" * 5000,
    "=cmd|' /C calc'!A0",
    "+1",
    "-x",
    "@SUM(A1)",
    "\tx",
    "0",
    "2.5",
    "a",
    "b",
]


def extreme_bodies(seed: int, count: int):
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.choice(["csv", "json", "ndjson"])
        name = rng.choice(["x", "x" * rng.choice([200, 201, 300_000])])
        if kind == "csv":
            rows = "".join(f"{rng.choice(EXTREMES)},{rng.choice(['a', 'b', ''])}\n" for _ in range(rng.randrange(1, 6)))
            yield "text/csv", f"{name},y\n{rows}".encode()
            continue
        depth = rng.choice([0, 3, 2000, 100_000])
        records = []
        for _ in range(rng.randrange(1, 5)):
            value = rng.choice(EXTREMES)
            number = value.lstrip("-").replace(".", "").isdigit() or value in ("1e309", "-1e309")
            text = value if number else json.dumps(value)
            records.append(f'{{"{name}": {"[" * depth}{text}{"]" * depth}, "y": "{rng.choice("ab")}"}}')
        if kind == "json":
            yield "application/json", f"[{', '.join(records)}]".encode()
        else:
            yield "application/x-ndjson", "\n".join(records).encode()


def formula_cells(client, name: str) -> list[str]:
    """Cells of text or category columns in the CSV download that a spreadsheet would run."""
    manifest = client.get(f"/api/datasets/{name}/versions/latest").json()
    strings = {c["name"] for c in manifest["schema"]["columns"] if c["type"] in ("text", "category")}
    rows = csv.DictReader(io.StringIO(client.get(f"/api/datasets/{name}/versions/latest/data").text, newline=""))
    return [v for row in rows for k, v in row.items() if k in strings and v and v[0] in "=+-@\t\r"]


@pytest.mark.parametrize("seed", range(3))
def test_extreme_values_never_crash_refusals_store_nothing_and_downloads_run_no_formulas(seed):
    with TestClient(create_app(Settings(outbox_interval_s=3600), fake_ports(IngestionPorts))) as client:
        ports = client.app.state.ports
        for i, (content_type, body) in enumerate(extreme_bodies(seed, 30)):
            name, headers = f"x{i}", {"content-type": content_type}
            before = (dict(ports.state.items), dict(ports.blobs.blobs))
            reply = client.post(f"/api/datasets/{name}/versions?target=y", content=body, headers=headers)
            assert reply.status_code < 500 and (reply.status_code < 400 or reply.json()["detail"]), body[:200]
            if reply.status_code >= 400:
                assert (ports.state.items, ports.blobs.blobs) == before, body[:200]
            else:
                assert formula_cells(client, name) == []
            upload_id = client.post(f"/api/datasets/p{i}/uploads?target=y").json()["upload_id"]
            part = client.put(f"/api/datasets/p{i}/uploads/{upload_id}/parts/1", content=body, headers=headers)
            assert part.status_code < 500, body[:200]
            assert (part.status_code < 400) == (reply.status_code < 400), "a part is judged like a whole upload"

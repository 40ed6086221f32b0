"""Downloads of a version: CSV safe to open in a spreadsheet, and never a clean-looking answer
when rows the version holds were lost from the blob store."""

import csv
import io
import threading
import time

import httpx
import pyarrow.parquet as pq
import pytest
import uvicorn

from services.common.ports import NotFound
from services.ingestion.domain.errors import Lost

CSV = {"content-type": "text/csv"}
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\tx=1", "\rx=1", "plain", "a=b"]


@pytest.fixture
def client(make_client):
    return make_client("ingestion")


def formulas(client):
    spec = {
        "name": "f",
        "task": "regression",
        "target": "y",
        "columns": [
            {"name": "note", "type": "text"},
            {"name": "kind", "type": "category"},
            {"name": "y", "type": "number"},
        ],
    }
    assert client.post("/api/datasets", json=spec).status_code == 201
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["note", "kind", "y"])
    for i, text in enumerate(FORMULAS):
        writer.writerow([text, "=HYPERLINK(1)" if i == 0 else "-b", -1.5 - i])
    reply = client.post("/api/datasets/f/versions", content=out.getvalue().encode(), headers=CSV)
    assert reply.status_code == 201 and reply.json()["row_count"] == len(FORMULAS), reply.text


def test_csv_downloads_quote_text_a_spreadsheet_would_run_as_a_formula(client):
    formulas(client)
    rows = list(csv.DictReader(io.StringIO(client.get("/api/datasets/f/versions/1/data").text, newline="")))
    assert [r["note"] for r in rows] == ["'" + t if t[0] in "=+-@\t\r" else t for t in FORMULAS]
    assert [r["kind"] for r in rows[:2]] == ["'=HYPERLINK(1)", "'-b"]
    assert [r["y"] for r in rows[:2]] == ["-1.5", "-2.5"], "numbers keep their sign"


def test_parquet_downloads_and_rows_give_the_values_as_stored(client):
    formulas(client)
    parquet = pq.read_table(io.BytesIO(client.get("/api/datasets/f/versions/1/data?format=parquet").content))
    assert parquet["note"].to_pylist() == FORMULAS
    rows = client.get("/api/datasets/f/versions/1/rows").json()["rows"]
    assert [r["note"] for r in rows] == FORMULAS and rows[0]["kind"] == "=HYPERLINK(1)"


IRIS = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"
MORE = b"sepal,petal,species\n1,1,a\n2,2,b\n"


def two_parts(client) -> list[str]:
    """A version of two parts; returns the blob key prefix of each, in order."""
    upload_id = client.post("/api/datasets/iris/uploads?target=species").json()["upload_id"]
    for number, body in ((1, IRIS), (2, MORE)):
        client.put(f"/api/datasets/iris/uploads/{upload_id}/parts/{number}", content=body, headers=CSV)
    assert client.post(f"/api/datasets/iris/uploads/{upload_id}/commit").status_code == 201
    return [p["key"] for p in client.get("/api/datasets/iris/versions/1").json()["parts"]]


def lose(client, part_key: str) -> None:
    del client.ports.blobs.blobs[f"{part_key}.parquet"]


def lose_while_streaming(client, part_key: str) -> None:
    """The part is there when the download checks its parts, and gone when the stream reaches it."""
    blobs, key, asked = client.ports.blobs, f"{part_key}.parquet", []
    stored = blobs.get

    async def get(wanted: str) -> bytes:
        if wanted == key:
            asked.append(wanted)
            if len(asked) > 1:
                raise NotFound(f"no blob {wanted!r}")
        return await stored(wanted)

    blobs.get = get


LOST_FIRST = "the stored rows of dataset 'iris' version 1 are missing (part 'datasets/iris/uploads/"


@pytest.mark.parametrize("query", ["", "?format=parquet"])
@pytest.mark.parametrize("which", [0, 1])
def test_a_download_with_a_part_lost_is_a_500_before_any_byte(client, query, which):
    # Through Dapr this is the only way to say it: daprd ends a stream that broke off cleanly.
    parts = two_parts(client)
    lose(client, parts[which])
    reply = client.get(f"/api/datasets/iris/versions/1/data{query}")
    assert reply.status_code == 500
    assert reply.json()["detail"].startswith(LOST_FIRST) and parts[which] in reply.json()["detail"]
    assert "lost from the blob store" in reply.json()["detail"]


def causes(error: BaseException | None):
    while error is not None:
        yield error
        error = error.__cause__


@pytest.mark.parametrize("query", ["", "?format=parquet"])
def test_a_part_lost_while_the_download_streams_fails_the_stream(client, query):
    _, second = two_parts(client)
    lose_while_streaming(client, second)
    # The status went out with the first part; the stream then fails instead of ending.
    with pytest.raises(Exception) as failure:
        client.get(f"/api/datasets/iris/versions/1/data{query}")
    assert any(isinstance(e, Lost) and second in str(e) for e in causes(failure.value))


@pytest.fixture
def server(make_client):
    """The ingestion app behind a real HTTP server, to see what reaches the wire."""
    client = make_client("ingestion")
    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=0, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        http.ports = client.ports
        yield http
    server.should_exit = True
    thread.join(10)


def test_over_http_a_part_lost_while_the_download_streams_cuts_it_off(server):
    _, second = two_parts(server)
    lose_while_streaming(server, second)
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete|without sending complete"):
        server.get("/api/datasets/iris/versions/1/data")


def test_rows_whose_part_was_lost_are_a_500_saying_the_data_was_lost_not_a_404(client):
    first, second = two_parts(client)
    lose(client, second)
    assert client.get("/api/datasets/iris/versions/1/rows?limit=3").status_code == 200, "part 1 is all it needs"
    reply = client.get("/api/datasets/iris/versions/1/rows")
    assert reply.status_code == 500
    assert reply.json()["detail"] == (
        f"the stored rows of dataset 'iris' version 1 are missing (part "
        f"'{second}.parquet'); the data was lost from the blob store"
    )


def test_a_version_whose_manifest_was_lost_is_a_500_saying_so(client):
    two_parts(client)
    key = client.get("/api/datasets/iris").json()["versions"][0]["manifest_key"]
    del client.ports.state.items[key]
    for path in ("", "/rows", "/data"):
        reply = client.get(f"/api/datasets/iris/versions/1{path}")
        assert reply.status_code == 500
        assert reply.json()["detail"] == (
            f"the manifest of dataset 'iris' version 1 is missing (state key {key!r}); it was lost from the state store"
        )

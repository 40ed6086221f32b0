"""Downloads of a version: CSV safe to open in a spreadsheet, and never a clean-looking answer
when rows the version holds were lost from the blob store."""

import csv
import io

import pyarrow.parquet as pq
import pytest

CSV = {"content-type": "text/csv"}
FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\tx=1", "\rx=1", "plain", "a=b"]


@pytest.fixture
def client(make_client):
    return make_client("ingestion")


def formulas(client):
    spec = {"name": "f", "task": "regression", "target": "y",
            "columns": [{"name": "note", "type": "text"}, {"name": "kind", "type": "category"},
                        {"name": "y", "type": "number"}]}
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

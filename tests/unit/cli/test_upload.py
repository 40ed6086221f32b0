"""datasets upload: a small file in one request, a big one in parts cut at record boundaries,
resumed after an interruption from the state file and the gateway's account of the parts."""

import csv
import io
import json
import re

import httpx

from services.cli import upload
from services.cli.upload import Saved, parts
from tests.unit.cli.conftest import reply

UPLOAD_ID = "0123456789abcdef0123456789abcdef"


def csv_file(tmp_path, rows: int = 300):
    path = tmp_path / "houses.csv"
    lines = ["rooms,area,note,price"] + [f'{i % 6},{50 + i}.5,"a ""quoted""\nnote {i}",{1000 * i}' for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_parts_each_start_with_the_header_and_cut_only_between_records(tmp_path):
    path = csv_file(tmp_path)
    kind, bodies = parts(path, 1024)
    bodies = list(bodies)
    assert kind == "text/csv" and len(bodies) > 5
    rows = []
    for body, _ in bodies:
        table = list(csv.reader(io.StringIO(body.decode())))
        assert table[0] == ["rooms", "area", "note", "price"]
        rows += table[1:]
    assert [r[3] for r in rows] == [str(1000 * i) for i in range(300)]
    assert all(r[2].startswith('a "quoted"\nnote ') for r in rows)
    assert sum(covered for _, covered in bodies) == path.stat().st_size


def test_a_json_list_goes_up_as_ndjson_parts(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"x": i, "y": "v" * 50} for i in range(100)]))
    kind, bodies = parts(path, 512)
    bodies = list(bodies)
    assert kind == "application/x-ndjson" and len(bodies) > 3
    records = [json.loads(line) for body, _ in bodies for line in body.splitlines()]
    assert [r["x"] for r in records] == list(range(100))


def test_a_small_file_is_one_request(fake, cli, tmp_path):
    (tmp_path / "small.csv").write_text("rooms,price\n1,10\n2,\n")
    answer = {
        "dataset": "houses",
        "version": 1,
        "unchanged": False,
        "row_count": 1,
        "rows_rejected": 1,
        "duplicates_dropped": 0,
        "upload": {"rows_accepted": 1, "rejected_rows": [{"row": 2, "reason": "the target 'price' is missing"}]},
    }
    fake.on("POST", "/api/datasets/houses/versions", reply(201, answer))
    result = cli("datasets", "upload", "small.csv", "--name", "houses", "--target", "price", "--task", "regression")
    assert result.exit_code == 0, result.output
    (sent,) = fake.sent
    assert dict(sent.url.params) == {"target": "price", "task": "regression"}
    assert sent.headers["content-type"] == "text/csv" and sent.content == b"rooms,price\n1,10\n2,\n"
    assert "houses v1 (new): 1 rows accepted, 1 rejected, 0 duplicates dropped" in result.stdout
    assert "rejected row 2: the target 'price' is missing" in result.stdout


class FakeUploads:
    """The gateway's multi-part upload API, enough to interrupt and resume."""

    def __init__(self, fake, fail_part: int | None = None):
        self.parts: dict[int, bytes] = {}
        self.fail_part, self.starts, self.commits = fail_part, 0, 0
        base = "/api/datasets/houses/uploads"
        fake.on("POST", base, self.start)
        fake.on("GET", f"{base}/{UPLOAD_ID}", self.state)
        fake.on("POST", f"{base}/{UPLOAD_ID}/commit", self.commit)
        for n in range(1, 100):
            fake.on("PUT", f"{base}/{UPLOAD_ID}/parts/{n}", self.put)

    def start(self, request):
        self.starts += 1
        return reply(201, {"upload_id": UPLOAD_ID, "state": "open", "parts": []})

    def state(self, request):
        return reply(200, {"upload_id": UPLOAD_ID, "state": "open", "parts": sorted(self.parts)})

    def put(self, request):
        number = int(request.url.path.rsplit("/", 1)[1])
        if number == self.fail_part:
            raise httpx.ConnectError("the network went away", request=request)
        self.parts[number] = request.content
        rows = request.content.count(b"\n") - 1
        return reply(200, {"part": number, "rows_accepted": rows, "rejected_rows": [], "unchanged": False})

    def commit(self, request):
        self.commits += 1
        rows = sum(len(list(csv.reader(io.StringIO(b.decode())))) - 1 for b in self.parts.values())
        return reply(
            201,
            {
                "dataset": "houses",
                "version": 2,
                "unchanged": False,
                "row_count": rows,
                "rows_rejected": 0,
                "duplicates_dropped": 0,
            },
        )


def test_an_interrupted_upload_continues_with_the_parts_the_gateway_lacks(fake, cli, tmp_path):
    path = csv_file(tmp_path)
    uploads = FakeUploads(fake, fail_part=4)
    args = (
        "datasets",
        "upload",
        "houses.csv",
        "--name",
        "houses",
        "--target",
        "price",
        "--part-size",
        "1K",
        "--parallel",
        "1",
    )
    first = cli(*args)
    assert first.exit_code == 3, first.output
    assert re.search(r"part 4: cannot reach the gateway", first.stderr)
    assert sorted(uploads.parts) == [1, 2, 3] and uploads.commits == 0
    assert Saved.load(path) is not None and Saved.load(path).parts == [1, 2, 3]

    uploads.fail_part = None
    sent_before = len(fake.sent)
    second = cli(*args)
    assert second.exit_code == 0, second.output
    resent = [int(r.url.path.rsplit("/", 1)[1]) for r in fake.sent[sent_before:] if r.method == "PUT"]
    assert resent == list(range(4, max(uploads.parts) + 1))
    assert uploads.starts == 1 and uploads.commits == 1
    assert "houses v2 (new): 300 rows accepted" in second.stdout
    assert "resumed: 3 parts were already at the gateway" in second.stdout
    assert Saved.load(path) is None  # forgotten once committed


def test_a_changed_file_is_a_new_upload(fake, cli, tmp_path):
    path = csv_file(tmp_path)
    Saved(UPLOAD_ID, "houses", "http://127.0.0.1:8000", 1024, [1, 2]).save(path)
    path.write_text(path.read_text() + "1,2.5,x,3\n")  # size and mtime change: another key
    uploads = FakeUploads(fake)
    result = cli("datasets", "upload", "houses.csv", "--name", "houses", "--part-size", "1K")
    assert result.exit_code == 0, result.output
    assert uploads.starts == 1 and "resumed" not in result.stdout


def test_an_upload_the_gateway_no_longer_has_starts_again(fake, cli, tmp_path):
    path = csv_file(tmp_path)
    Saved(UPLOAD_ID, "houses", "http://127.0.0.1:8000", 1024, [1, 2]).save(path)
    uploads = FakeUploads(fake)
    fake.on("GET", f"/api/datasets/houses/uploads/{UPLOAD_ID}", reply(404, {"detail": "gone"}))
    result = cli("datasets", "upload", "houses.csv", "--name", "houses", "--part-size", "1K")
    assert result.exit_code == 0, result.output
    assert uploads.starts == 1 and len(uploads.parts) > 5


def test_state_files_live_under_the_cache_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    path = csv_file(tmp_path, rows=3)
    assert Saved.file_of(path).parent == tmp_path / "c" / "daprml" / "uploads"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert str(upload.cache_dir()).endswith(".cache/daprml/uploads")

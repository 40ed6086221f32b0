"""`daprml datasets upload`: one request for a small file, the multi-part upload API for a
big one, resumable.

A big file is cut into parts at record boundaries (a CSV part repeats the header line; a
JSON list goes up as NDJSON parts), the same way every time for the same part size. The
upload's id and the parts sent are kept in ~/.cache/daprml/uploads/<key>.json, keyed by the
file's path, size and modification time: running the same command again after an
interruption asks the gateway which parts it holds and sends only the others. The state file
is removed once the version is committed.
"""

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.cli.client import USAGE, CliError, Gateway, q

CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json", ".ndjson": "application/x-ndjson"}
CONTENT_TYPES[".jsonl"] = CONTENT_TYPES[".ndjson"]
NDJSON = CONTENT_TYPES[".ndjson"]

# advance(bytes of the file done, rows accepted), note(a line to show)
Advance = Callable[[int, int], None]


def content_type(path: Path) -> str:
    kind = CONTENT_TYPES.get(path.suffix.lower())
    if kind is None:
        raise CliError(f"{path}: expected a .csv, .json or .ndjson file", USAGE)
    return kind


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "daprml" / "uploads"


@dataclass
class Saved:
    """What is kept between runs of one upload."""

    upload_id: str
    dataset: str
    url: str
    part_bytes: int
    parts: list[int] = field(default_factory=list)

    @staticmethod
    def file_of(path: Path) -> Path:
        stat = path.stat()
        key = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"
        return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    @classmethod
    def load(cls, path: Path) -> "Saved | None":
        try:
            return cls(**json.loads(cls.file_of(path).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        target = self.file_of(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        temporary.replace(target)

    @classmethod
    def forget(cls, path: Path) -> None:
        cls.file_of(path).unlink(missing_ok=True)


def _csv_parts(path: Path, part_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(body, bytes of the file it holds). A newline ends a record only outside quotes: an
    even number of '"' so far (an escaped quote is two)."""
    with path.open("rb") as f:
        header, quotes = b"", 0
        for line in f:
            header += line
            quotes += line.count(b'"')
            if quotes % 2 == 0:
                break
        if not header.endswith(b"\n"):
            header += b"\n"
        chunk: list[bytes] = []
        size, consumed, quotes = 0, len(header), 0
        for line in f:
            chunk.append(line)
            size += len(line)
            quotes += line.count(b'"')
            if size >= part_bytes and quotes % 2 == 0:
                yield header + b"".join(chunk), consumed + size
                chunk, consumed, size = [], 0, 0
        if chunk:
            yield header + b"".join(chunk), consumed + size


def _ndjson_parts(lines: Iterator[bytes], part_bytes: int, ratio: float = 1.0) -> Iterator[tuple[bytes, int]]:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if not line.strip():
            continue
        chunk.append(line if line.endswith(b"\n") else line + b"\n")
        size += len(line)
        if size >= part_bytes:
            yield b"".join(chunk), round(size * ratio)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk), round(size * ratio)


def _ndjson_file(path: Path, part_bytes: int) -> Iterator[tuple[bytes, int]]:
    with path.open("rb") as f:
        yield from _ndjson_parts(iter(f), part_bytes)


def _json_parts(path: Path, part_bytes: int) -> Iterator[tuple[bytes, int]]:
    try:
        records = json.loads(path.read_bytes())
    except ValueError as exc:
        raise CliError(f"{path}: not valid JSON: {exc}", USAGE) from exc
    if not isinstance(records, list):
        raise CliError(f"{path}: expected a JSON list of records", USAGE)
    lines = [json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records]
    ratio = path.stat().st_size / max(1, sum(map(len, lines)))  # progress in the file's bytes
    return _ndjson_parts(iter(lines), part_bytes, ratio)


def parts(path: Path, part_bytes: int) -> tuple[str, Iterator[tuple[bytes, int]]]:
    """The parts' content type, and the parts: (body, bytes of the file it covers)."""
    kind = content_type(path)
    if kind == "text/csv":
        return kind, _csv_parts(path, part_bytes)
    if kind == NDJSON:
        return kind, _ndjson_file(path, part_bytes)
    return NDJSON, _json_parts(path, part_bytes)


class Uploader:
    def __init__(self, gateway: Gateway, path: Path, dataset: str, target: str | None, task: str | None):
        self.gateway, self.path, self.dataset = gateway, path, dataset
        self.query = {k: v for k, v in {"target": target, "task": task}.items() if v is not None}
        self.base = f"/api/datasets/{q(dataset)}"
        self.rejected: list[str] = []  # the first reasons, with their part and row
        self.resumed = 0  # parts the gateway already held
        self.committing = False  # the saved upload was being committed when the last run stopped

    def once(self, advance: Advance) -> dict[str, Any]:
        """A small file: one request, one version."""
        reply = self.gateway.request(
            "POST",
            f"{self.base}/versions",
            params=self.query,
            content=self.path.read_bytes(),
            headers={"content-type": content_type(self.path)},
        ).json()
        report = reply.get("upload", {})
        self._note_rejections(None, report)
        advance(self.path.stat().st_size, report.get("rows_accepted", 0))
        return dict(reply)

    def in_parts(self, part_bytes: int, parallel: int, advance: Advance) -> dict[str, Any]:
        saved = self._resume(part_bytes)
        if saved is None:
            start = self.gateway.request("POST", f"{self.base}/uploads", params=self.query).json()
            saved = Saved(start["upload_id"], self.dataset, self.gateway.url, part_bytes)
            saved.save(self.path)
        elif self.committing:  # a commit had begun: finish it
            return self._commit(saved)
        kind, bodies = parts(self.path, saved.part_bytes)
        done = set(saved.parts)
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            pending: dict[Future[dict[str, Any]], int] = {}
            for number, (body, covered) in enumerate(bodies, start=1):
                if number in done:
                    self.resumed += 1
                    advance(covered, 0)
                    continue
                pending[pool.submit(self._put, saved.upload_id, number, body, kind)] = covered
                # The first part alone: a dataset new to the gateway takes its schema from it.
                while pending and (number == 1 or len(pending) >= parallel):
                    self._collect(pending, saved, advance)
            while pending:
                self._collect(pending, saved, advance)
        return self._commit(saved)

    def _collect(self, pending: dict[Future[dict[str, Any]], int], saved: Saved, advance: Advance) -> None:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            covered = pending.pop(future)
            result = future.result()  # a CliError of that part's request goes up from here
            saved.parts.append(result["part"])
            saved.save(self.path)
            self._note_rejections(result["part"], result)
            advance(covered, result.get("rows_accepted", 0))

    def _put(self, upload_id: str, number: int, body: bytes, kind: str) -> dict[str, Any]:
        try:
            reply = self.gateway.request(
                "PUT",
                f"{self.base}/uploads/{q(upload_id)}/parts/{number}",
                content=body,
                headers={"content-type": kind},
            )
        except CliError as exc:
            raise CliError(f"part {number}: {exc}", exc.code) from exc
        return dict(reply.json())

    def _resume(self, part_bytes: int) -> Saved | None:
        """The saved upload if the gateway still has it open (or committing), else None."""
        saved = Saved.load(self.path)
        if saved is None or saved.dataset != self.dataset or saved.url != self.gateway.url:
            return None
        reply = self.gateway.request("GET", f"{self.base}/uploads/{q(saved.upload_id)}", ok=(404,))
        state: dict[str, Any] = reply.json() if reply.status_code == 200 else {"state": "gone"}
        if state["state"] in ("committing", "committed"):
            self.committing = True
            return saved
        if state["state"] != "open":
            return None
        saved.parts = sorted(state["parts"])  # the gateway's account wins over ours
        return saved

    def _commit(self, saved: Saved) -> dict[str, Any]:
        result = dict(self.gateway.request("POST", f"{self.base}/uploads/{q(saved.upload_id)}/commit").json())
        Saved.forget(self.path)
        return result

    def _note_rejections(self, part: int | None, report: dict[str, Any]) -> None:
        for row in report.get("rejected_rows", []):
            if len(self.rejected) < 10:
                where = f"part {part} row {row['row']}" if part is not None else f"row {row['row']}"
                self.rejected.append(f"{where}: {row['reason']}")


def upload(
    gateway: Gateway,
    path: Path,
    dataset: str,
    target: str | None,
    task: str | None,
    part_bytes: int,
    parallel: int,
    advance: Advance,
) -> tuple[dict[str, Any], Uploader]:
    """The committed version's answer, and the uploader (its notes on rejected rows)."""
    if not path.is_file():
        raise CliError(f"{path}: no such file", USAGE)
    content_type(path)
    uploader = Uploader(gateway, path, dataset, target, task)
    if path.stat().st_size <= part_bytes and Saved.load(path) is None:
        return uploader.once(advance), uploader
    return uploader.in_parts(part_bytes, parallel, advance), uploader

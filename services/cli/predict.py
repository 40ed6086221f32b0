"""`daprml predict`: rows from a CSV or JSON file, typed by the model's card, sent in batches
to one pinned model version; the answers beside the rows, as a table or a CSV/JSON file."""

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from services.cli.client import USAGE, CliError, Gateway, q
from services.common.contracts import NUMERIC, ColumnType

BATCH = 1000  # records per request (the gateway takes up to 10,000)
MISSING = {"", "na", "n/a", "null", "nan", "none"}  # as ingestion reads them, case aside
TRUE, FALSE = {"true", "yes", "1", "1.0"}, {"false", "no", "0", "0.0"}


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise CliError(f"{path}: no such file", USAGE)
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    if suffix in (".json", ".ndjson", ".jsonl"):
        try:
            data = (
                [json.loads(line) for line in text.splitlines() if line.strip()]
                if suffix != ".json"
                else json.loads(text)
            )
        except ValueError as exc:
            raise CliError(f"{path}: not valid JSON: {exc}", USAGE) from exc
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise CliError(f"{path}: expected a JSON list of records (objects)", USAGE)
        return data
    raise CliError(f"{path}: expected a .csv or .json file", USAGE)


def _number(text: str, integer: bool) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text  # the gateway says what is wrong with it, naming the record
    if integer and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def typed(value: Any, type_: str) -> Any:
    """A CSV cell (a string) as the feature's type wants it; other values pass as they are."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() in MISSING:
        return None
    if type_ in NUMERIC:
        return _number(value.strip(), type_ == ColumnType.INTEGER)
    if type_ == ColumnType.BOOLEAN:
        lowered = value.strip().lower()
        return True if lowered in TRUE else False if lowered in FALSE else value
    return value


def records_for(rows: list[dict[str, Any]], features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Only the features (other columns, such as the target, stay out), each typed."""
    return [{f["name"]: typed(row[f["name"]], f["type"]) for f in features if f["name"] in row} for row in rows]


def predict(
    gateway: Gateway, model: str, rows: list[dict[str, Any]], version: int | None, alias: str | None
) -> dict[str, Any]:
    """One answer for all rows, from one model version: the one the version or alias names
    when the first request is made (an alias moving meanwhile does not mix versions)."""
    if not rows:
        raise CliError("the file holds no rows", USAGE)
    ref = str(version) if version is not None else alias or "champion"
    card = gateway.get(f"/api/models/{q(model)}/versions/{q(ref)}")
    pinned, features = card["version"], card["card"]["features"]
    records = records_for(rows, features)
    answer: dict[str, Any] = {"model": model, "version": pinned, "predictions": []}
    for start in range(0, len(records), BATCH):
        reply = gateway.post(
            f"/api/models/{q(model)}/predict", {"records": records[start : start + BATCH], "version": pinned}
        )
        answer["predictions"] += reply["predictions"]
        if "prediction_ids" in reply:  # each record's, to send its ground truth with (--json shows them)
            answer.setdefault("prediction_ids", []).extend(reply["prediction_ids"])
        if "probabilities" in reply:
            answer.setdefault("probabilities", []).extend(reply["probabilities"])
        if reply.get("warnings"):
            answer["warnings"] = merged(answer.get("warnings", []), reply["warnings"])
    return answer


def merged(warnings: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model contract's warnings of all batches, one per kind and field, records summed
    (each batch's answer has at most one per kind and field)."""
    out = {(w["kind"], w.get("field")): dict(w) for w in warnings}
    for w in more:
        key = (w["kind"], w.get("field"))
        if key in out:
            out[key]["records"] += w["records"]
            # The server's words count one batch's records: say it again for them all.
            what = f"{str(w['kind']).replace('_', ' ')} {w['field']!r}" if w.get("field") else "more warnings"
            out[key]["message"] = f"{what} in {out[key]['records']} records"
        else:
            out[key] = dict(w)
    return list(out.values())


def joined(rows: list[dict[str, Any]], answer: dict[str, Any], proba: bool) -> list[dict[str, Any]]:
    """Each row with its prediction (and, with proba, a proba_<class> column per class)."""
    out = []
    probabilities = answer.get("probabilities") or [None] * len(rows)
    for row, prediction, classes in zip(rows, answer["predictions"], probabilities, strict=True):
        line = {**row, "prediction": prediction}
        if proba and classes:
            line |= {f"proba_{k}": v for k, v in classes.items()}
        out.append(line)
    return out


def write(path: Path, lines: list[dict[str, Any]]) -> None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(lines, indent=1, ensure_ascii=False) + "\n")
    elif suffix == ".csv":
        columns = list(dict.fromkeys(k for line in lines for k in line))
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(lines)
    else:
        raise CliError(f"{path}: --output takes a .csv or .json file", USAGE)

"""Dataset version profiles: per-column counts, numeric summaries, category counts, class
balance. Built per part and merged, so a version's profile never needs all rows at once."""

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from services.common.contracts import ColumnType, Task
from services.ingestion.domain.schema import Schema

MAX_CATEGORIES = 1000  # distinct values counted per column; the rest add up under "(other)"


def part_profile(table: pa.Table, schema: Schema) -> dict[str, Any]:
    """Mergeable statistics of one part (counts, means and M2 for Chan's parallel variance)."""
    columns = {}
    for column in schema.columns:
        values = table[column.name]
        stats: dict[str, Any] = {"rows": table.num_rows, "missing": values.null_count}
        present = table.num_rows - values.null_count
        if column.type in (ColumnType.NUMBER, ColumnType.INTEGER) and present:
            floats = pc.cast(values, pa.float64())
            minmax = pc.min_max(floats).as_py()
            variance = pc.variance(floats, ddof=0).as_py() or 0.0
            stats |= {
                "n": present,
                "mean": pc.mean(floats).as_py(),
                "m2": variance * present,
                "min": minmax["min"],
                "max": minmax["max"],
            }
        elif column.type in (ColumnType.CATEGORY, ColumnType.BOOLEAN):
            counts = pc.value_counts(pc.drop_null(values))
            pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
            stats["counts"] = {str(v).lower() if column.type == ColumnType.BOOLEAN else v: c for v, c in pairs}
        elif column.type == ColumnType.TEXT and present:
            lengths = pc.min_max(pc.utf8_length(values)).as_py()
            stats |= {"min_length": lengths["min"], "max_length": lengths["max"]}
        columns[column.name] = stats
    return {"rows": table.num_rows, "columns": columns}


def _merge_column(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {"rows": a["rows"] + b["rows"], "missing": a["missing"] + b["missing"]}
    if "n" in a and "n" in b:
        n = a["n"] + b["n"]
        delta = b["mean"] - a["mean"]
        merged |= {
            "n": n,
            "mean": a["mean"] + delta * b["n"] / n,
            "m2": a["m2"] + b["m2"] + delta * delta * a["n"] * b["n"] / n,
            "min": min(a["min"], b["min"]),
            "max": max(a["max"], b["max"]),
        }
    elif "n" in a or "n" in b:
        merged |= {k: v for k, v in (a if "n" in a else b).items() if k not in ("rows", "missing")}
    if "counts" in a or "counts" in b:
        counts = dict(a.get("counts", {}))
        for value, count in b.get("counts", {}).items():
            counts[value] = counts.get(value, 0) + count
        merged["counts"] = counts
    if "min_length" in a or "min_length" in b:
        lows = [x["min_length"] for x in (a, b) if "min_length" in x]
        highs = [x["max_length"] for x in (a, b) if "max_length" in x]
        merged |= {"min_length": min(lows), "max_length": max(highs)}
    return merged


def merge(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    if a is None:
        return b
    return {
        "rows": a["rows"] + b["rows"],
        "columns": {name: _merge_column(a["columns"][name], b["columns"][name]) for name in b["columns"]},
    }


def _top(counts: dict[str, int]) -> dict[str, int]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    top = dict(ranked[:MAX_CATEGORIES])
    if len(ranked) > MAX_CATEGORIES:
        top["(other)"] = sum(c for _, c in ranked[MAX_CATEGORIES:])
    return top


def finish(merged: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """The profile as stored in a version's manifest and shown to people."""
    columns = {}
    for column in schema.columns:
        stats = merged["columns"][column.name]
        out: dict[str, Any] = {
            "type": column.type.value,
            "missing": stats["missing"],
            "present": stats["rows"] - stats["missing"],
        }
        if "n" in stats:
            std = math.sqrt(stats["m2"] / (stats["n"] - 1)) if stats["n"] > 1 else 0.0
            out |= {"min": stats["min"], "max": stats["max"], "mean": stats["mean"], "std": std}
        if "counts" in stats:
            out["counts"] = _top(stats["counts"])
        if "min_length" in stats:
            out |= {"min_length": stats["min_length"], "max_length": stats["max_length"]}
        columns[column.name] = out
    profile: dict[str, Any] = {"rows": merged["rows"], "columns": columns}
    target = columns[schema.target]
    if schema.task == Task.CLASSIFICATION:
        total = sum(target.get("counts", {}).values()) or 1
        profile["class_balance"] = {k: round(v / total, 6) for k, v in target.get("counts", {}).items()}
    return profile


def summary(profile: dict[str, Any]) -> dict[str, Any]:
    """The short form carried by the version-committed event."""
    return {
        "rows": profile["rows"],
        "columns": len(profile["columns"]),
        "missing_values": sum(c["missing"] for c in profile["columns"].values()),
        **({"class_balance": profile["class_balance"]} if "class_balance" in profile else {}),
    }

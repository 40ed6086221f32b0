"""Loads the datasets scikit-learn ships into daprml through the public API.

    python -m scripts.samples [--gateway http://127.0.0.1:8000] [--only iris,wine]

iris, wine and breast_cancer (classification), diabetes (regression), and "flowers": iris
with categorical columns, missing values, a few bad rows and repeated rows, to show what
validation and profiles do with messy data. Uploading a sample again is harmless: identical
content returns the existing version.
"""

import argparse
import sys
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
from sklearn import datasets

from scripts import credentials


def _labelled(loader: Callable, regression: bool = False) -> pd.DataFrame:
    bunch = loader(as_frame=True)
    frame = bunch.frame
    if not regression:
        frame["target"] = frame["target"].map(dict(enumerate(bunch.target_names)))
    return frame


def flowers() -> pd.DataFrame:
    """Iris made messy, the same way every time."""
    rng = np.random.default_rng(7)
    frame = _labelled(datasets.load_iris).rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame.insert(4, "petal_size", pd.cut(frame["petal_length"], [0, 2, 5, 10], labels=["small", "medium", "large"]))
    frame.insert(5, "garden", rng.choice(["north", "south", "east"], size=len(frame)))
    frame = frame.astype({"petal_size": object, "sepal_width": object, "garden": object})
    frame.loc[rng.choice(len(frame), 12, replace=False), "sepal_width"] = None  # missing numbers
    frame.loc[rng.choice(len(frame), 8, replace=False), "garden"] = "NA"  # missing categories
    frame.loc[rng.choice(len(frame), 3, replace=False), "sepal_width"] = "n/k"  # not a number: rejected
    frame.loc[rng.choice(len(frame), 2, replace=False), "target"] = ""  # no label: rejected
    return pd.concat([frame, frame.iloc[:5]], ignore_index=True)  # repeated rows: dropped


# Declared rather than inferred: "n/k" in sepal_width must read as a bad number, not make
# the column text; a missing garden reads as "unknown".
FLOWERS_COLUMNS = [
    {"name": "sepal_length", "type": "number", "missing": "reject"},
    {"name": "sepal_width", "type": "number"},
    {"name": "petal_length", "type": "number"},
    {"name": "petal_width", "type": "number"},
    {"name": "petal_size", "type": "category"},
    {"name": "garden", "type": "category", "missing": "fill", "fill_value": "unknown"},
    {"name": "target", "type": "category"},
]
SCHEMAS = {"flowers": {"task": "classification", "target": "target", "columns": FLOWERS_COLUMNS}}

SAMPLES: dict[str, Callable[[], pd.DataFrame]] = {
    "iris": lambda: _labelled(datasets.load_iris),
    "wine": lambda: _labelled(datasets.load_wine),
    "breast-cancer": lambda: _labelled(datasets.load_breast_cancer),
    "diabetes": lambda: _labelled(datasets.load_diabetes, regression=True),
    "flowers": flowers,
}


def load(gateway: str, names: list[str], key: str | None = None) -> list[dict]:
    results = []
    with httpx.Client(base_url=gateway, timeout=60, headers=credentials.auth_headers(key)) as client:
        for name in names:
            if name in SCHEMAS and client.get(f"/api/datasets/{name}").status_code == 404:
                created = client.post("/api/datasets", json={"name": name, **SCHEMAS[name]})
                if created.status_code != 201:
                    raise RuntimeError(f"{name}: HTTP {created.status_code}: {created.text[:300]}")
            body = SAMPLES[name]().to_csv(index=False).encode()
            reply = client.post(
                f"/api/datasets/{name}/versions",
                params={"target": "target"},
                content=body,
                headers={"content-type": "text/csv"},
            )
            if reply.status_code not in (200, 201):
                raise RuntimeError(f"{name}: HTTP {reply.status_code}: {reply.text[:300]}")
            results.append(reply.json())
    return results


def describe(result: dict) -> str:
    upload = result.get("upload", {})
    state = "unchanged" if result["unchanged"] else "new"
    return (
        f"{result['dataset']:14} v{result['version']} ({state}): {result['row_count']} rows, "
        f"{result['schema']['task']}, {upload.get('rows_rejected', 0)} rejected, "
        f"{upload.get('duplicates_dropped', 0)} duplicates dropped"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--only", default=",".join(SAMPLES), help="comma-separated sample names")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(SAMPLES))
    if unknown:
        parser.error(f"unknown samples {unknown}; there are {sorted(SAMPLES)}")
    try:
        for result in load(args.gateway, names, credentials.admin_key()):
            print(describe(result))
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"samples: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Predictions of each sample dataset's champion through the gateway, by the JSON API and by
the Open Inference Protocol v2, printed beside the true values.

    python -m scripts.predictions [--gateway http://127.0.0.1:8000] [--only iris,wine] [--rows 4]

Both requests carry the same rows (a few of the sample's rows without a missing value, spread over
it, so that each fits an OIP tensor); the two answers must agree, which the output says.
"""

import argparse
import sys
from typing import Any

import httpx
import numpy as np
import pandas as pd

from scripts import credentials, samples

# The OIP datatype of each feature type (GET /v2/models/{name} says which a model wants).
NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}


def rows_of(name: str, count: int) -> pd.DataFrame:
    frame = samples.SAMPLES[name]()
    complete = frame[frame.notna().all(axis=1) & (frame["target"].astype(str) != "")]
    spread = np.linspace(0, len(complete) - 1, count).astype(int)  # samples are sorted by class
    return complete.iloc[spread].reset_index(drop=True)


def by_json(client: httpx.Client, name: str, rows: pd.DataFrame) -> dict[str, Any]:
    records = rows.drop(columns="target").to_dict(orient="records")
    reply = client.post(f"/api/models/{name}/predict", json={"records": records})
    reply.raise_for_status()
    return reply.json()


def metadata_of(client: httpx.Client, name: str) -> dict[str, Any]:
    reply = client.get(f"/v2/models/{name}")
    reply.raise_for_status()
    found: dict[str, Any] = reply.json()
    return found


def by_oip(client: httpx.Client, name: str, rows: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    """One tensor per feature, named and typed as the model's metadata says."""
    inputs = []
    for spec in metadata["inputs"]:
        column = rows[spec["name"]]
        data = column.astype(str).tolist() if spec["datatype"] == "BYTES" else column.astype(NUMPY[spec["datatype"]])
        inputs.append({"name": spec["name"], "datatype": spec["datatype"], "shape": [len(rows)], "data": list(data)})
    reply = client.post(f"/v2/models/{name}/infer", json={"id": f"make-run-{name}", "inputs": inputs})
    reply.raise_for_status()
    return reply.json()


def show(gateway: str, names: list[str], count: int = 4, key: str | None = None) -> bool:
    """Prints the predictions; returns whether both protocols answered and agreed for every dataset."""
    print("predictions: each champion through the gateway, JSON API and Open Inference Protocol v2")
    ok = True
    with httpx.Client(base_url=gateway, timeout=60, headers=credentials.auth_headers(key)) as client:
        for name in names:
            rows = rows_of(name, count)
            try:
                answer = by_json(client, name, rows)
                metadata = metadata_of(client, name)
                oip = by_oip(client, name, rows, metadata)
            except httpx.HTTPStatusError as exc:
                print(f"  {name:14} HTTP {exc.response.status_code}: {exc.response.text[:200]}")
                ok = False
                continue
            predicted = answer["predictions"]
            from_oip = next(o["data"] for o in oip["outputs"] if o["name"] == "predict")
            agree = _same(predicted, from_oip)
            ok = ok and agree
            pairs = ", ".join(f"{_short(p)} (true {_short(t)})" for p, t in zip(predicted, rows["target"], strict=True))
            print(
                f"  {name:14} v{answer['version']} ({_runtime(answer, metadata)}): {pairs}; "
                f"OIP v2 {'agrees' if agree else 'DISAGREES: ' + str(from_oip)}"
            )
    return ok


def _runtime(answer: dict[str, Any], metadata: dict[str, Any]) -> str:
    """What predicted, and why not the compiled model when it was not."""
    runtime = str(answer.get("runtime"))
    why = metadata.get("parameters", {}).get("not_compiled")
    return f"{runtime}: {why}" if why else runtime


def _same(a: list[Any], b: list[Any]) -> bool:
    if all(isinstance(x, int | float) for x in [*a, *b]):
        return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
    return [str(x) for x in a] == [str(x) for x in b]


def _short(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--only", default=",".join(samples.SAMPLES), help="comma-separated sample names")
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args(argv)
    try:
        names = [n for n in args.only.split(",") if n]
        return 0 if show(args.gateway, names, args.rows, credentials.admin_key()) else 1
    except httpx.HTTPError as exc:
        print(f"predictions: error: the gateway did not answer ({exc}); is the stack up? (make up)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

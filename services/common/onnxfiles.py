"""Compiled models: ONNX files, addressed by their sha256. Training writes one beside each skops
file and checks it against the pipeline through `session` and `feed`; inference serves it
through the very same two. One reading of what a safe ONNX file is, and of how a model's input
columns become its tensors.

A file is read only once its bytes match the recorded sha256, and refused when it keeps any
tensor outside itself (external data: a path onnxruntime would open) or names an operator
outside the standard ONNX and ONNX-ML domains (custom operators run code of their own).
Imported only by the services that compile or serve models: onnx and onnxruntime are theirs.

Input: one [rows, 1] tensor per feature, named as the feature: float32 for numbers and
booleans (0/1), strings for categories and text, a missing category given as the card's
`missing_category` string (ONNX has no NaN among strings).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from services.common.contracts import Feature
from services.common.contracts.coercion import FLOAT, MISSING_CATEGORY, dtype
from services.common.errors import ClientError
from services.common.modelfiles import ModelFileRejected, verify

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
"""The opsets training writes with: onnxruntime 1.32 runs them, and ai.onnx.ml 3 is the last
whose tree ensembles skl2onnx 1.20 writes for scikit-learn's (checked by the training tests)."""


def session_options(threads: int = 1) -> ort.SessionOptions:
    """Sessions for a shared machine: `threads` threads per predict call, none of them spinning
    while idle (onnxruntime's default spins, to shave microseconds off the next call, at the
    cost of a busy core that others here need)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
    return options


def check(data: bytes, what: str = "the ONNX file") -> None:
    """Raises ValueError when the file keeps data outside itself or names a custom operator."""
    try:
        model = onnx.load_model_from_string(data)  # from bytes: nothing outside is read
    except Exception as e:  # protobuf's DecodeError and onnx's own, among others
        raise ValueError(f"{what} is not a readable ONNX model ({type(e).__name__})") from None
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for tensor in graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise ValueError(f"{what} keeps tensor {tensor.name!r} in external data: only self-contained ones load")
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS:
                raise ValueError(f"{what} uses the custom operator {node.domain}.{node.op_type}; it is not loaded")
            graphs.extend(a.g for a in node.attribute if a.HasField("g"))
            graphs.extend(g for a in node.attribute for g in a.graphs)
    custom = sorted({o.domain for o in model.opset_import} - STANDARD_DOMAINS)
    if custom:
        raise ValueError(f"{what} imports the custom operator sets {custom}; it is not loaded")


def session(
    data: bytes,
    expected_sha256: str,
    what: str = "the ONNX file",
    rejected: type[ClientError] = ModelFileRejected,
    threads: int = 1,
) -> ort.InferenceSession:
    """A session over the ONNX file, once its sha256 and its contents are checked; `rejected`
    is the error a service raises for a file it will not load."""
    verify(data, expected_sha256, what, rejected)
    try:
        check(data, what)
        return ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
    except ValueError as e:
        raise rejected(str(e)) from None
    except Exception as e:  # onnxruntime's own errors (a graph it cannot run)
        raise rejected(f"{what} cannot be run by onnxruntime: {e}") from None


def feed(columns: Mapping[str, Any], features: Sequence[Feature]) -> dict[str, np.ndarray]:
    """The model's input tensors from its feature columns (any 1-D sequences: numpy arrays, a
    frame's columns), each as training's frames hold them: floats with NaN for missing numbers,
    strings with NaN or None for missing categories."""
    tensors = {}
    for feature in features:
        values = np.asarray(columns[feature.name])
        if dtype(feature.type) == FLOAT:
            tensors[feature.name] = values.astype(np.float32).reshape(-1, 1)
        else:
            tensors[feature.name] = strings(values).reshape(-1, 1)
    return tensors


def strings(values: np.ndarray, marker: str = MISSING_CATEGORY) -> np.ndarray:
    """Category values as the models trained since compiling began read them: strings, a
    missing one (NaN or None) as the marker."""
    out = values.astype(object, copy=True)
    for i, value in enumerate(out):
        if not isinstance(value, str):
            out[i] = marker
    return out

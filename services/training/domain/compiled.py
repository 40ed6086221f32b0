"""The fitted pipeline as an ONNX model, checked against scikit-learn before it may be served.

skl2onnx converts the whole pipeline (imputers, scaler, one-hot encoder, estimator): one
[rows, 1] input per feature, as services/common/onnxfiles.py feeds them. The check runs the file
through onnxfiles' own `session` and `feed`, exactly as inference will serve it, over the
holdout (its first MAX_CHECK_ROWS rows) and edge rows made from it: every feature missing, each
feature missing alone, every category unseen, numbers far outside the training range. It passes
when classifiers serve the same class on both sides (the most probable one; rows whose two most
probable classes are within the tolerance of each other excepted, and counted as ties) with
probabilities within PROBABILITY_TOLERANCE, and regressors predict within
REGRESSION_TOLERANCE relative to the prediction's size (absolute below 1).

Whatever goes wrong (a step skl2onnx does not convert, a failed check, a file too big) gives no
file and a reason; it never fails the training job: the version is then served from skops.
"""

import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import skl2onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from services.common import onnxfiles
from services.common.contracts import NUMERIC, Feature, Task
from services.common.contracts.coercion import FLOAT, MISSING, MISSING_CATEGORY, dtype
from services.common.contracts.models import OnnxCheck, OnnxModel
from services.common.errors import ClientError
from services.common.modelfiles import sha256
from services.training.domain import onnx_shim

PROBABILITY_TOLERANCE = 1e-4
"""Class probabilities: the most ONNX's (float32) may differ from scikit-learn's (float64)."""
REGRESSION_TOLERANCE = 1e-4
"""Predictions: the most ONNX's may differ from scikit-learn's, relative to the prediction's
size when it is above 1 (absolute below)."""
MAX_CHECK_ROWS = 10_000  # of the holdout; more adds time, not confidence
EDGE_BASE_ROWS = 20  # holdout rows each edge case is made of
FAR = 1000.0  # an extreme number: this many training ranges beyond the range
FLOAT32_SAFE = 1e30  # extremes stay within this, well inside float32 (3.4e38)
MAX_ONNX_BYTES = 40 * 1024 * 1024
"""The largest ONNX file kept. The blob store takes one gRPC message of at most 64 MiB, base64
encoded (about 47.9 MiB of file, services/common/dapr_adapters/blobs.py), and the registry
serves the file in one reply: 40 MiB leaves room for both. (Unlike skops files, ONNX files are
not compressed: a big forest may fit as skops and not as ONNX.)"""
BYTES_PER_NODE = 36
"""The least a tree node takes in the ONNX file (37-39 bytes measured, more with more classes):
a forest whose nodes alone are over the bound is not converted (converting a 60,000-row random
forest took a minute, for a 236 MiB file)."""
UNSEEN = "__unseen__"  # a category no training row had (made longer if one had it)
SERVED_BY_SKLEARN = "the version is served by scikit-learn from its skops file"


@dataclass(frozen=True)
class Compiled:
    data: bytes | None
    """The ONNX file: only when it converted and passed the check."""
    model: OnnxModel
    """The check's result; `artifact` stays None until the file is stored."""
    convert_s: float
    check_s: float


def compile_pipeline(pipeline: Pipeline, features: Sequence[Feature], task: Task, holdout: pd.DataFrame) -> Compiled:
    """The fitted pipeline as a checked ONNX file, or why there is none. `features` are the
    card's (with the ranges seen in training), `holdout` the rows the pipeline was scored on,
    as `pipeline.frame` made them."""
    started = perf_counter()
    nodes = tree_nodes(pipeline)
    if nodes * BYTES_PER_NODE > MAX_ONNX_BYTES:
        return _failed(
            _too_big(f"at least {nodes * BYTES_PER_NODE / 2**20:.0f} MiB ({nodes:,} tree nodes)"), 0.0, 0.0, versions()
        )
    try:
        data = convert(pipeline, features, task)
    except (Exception, MemoryError) as e:  # skl2onnx raises many kinds; none may fail the job
        reason = f"the pipeline could not be converted to ONNX ({type(e).__name__}: {_said(e)}); {SERVED_BY_SKLEARN}"
        return _failed(reason, perf_counter() - started, 0.0, versions())
    converted = perf_counter()
    convert_s, found = converted - started, versions(data)
    if len(data) > MAX_ONNX_BYTES:
        return _failed(_too_big(f"{len(data) / 2**20:.1f} MiB"), convert_s, 0.0, found)
    try:
        check = compare(data, pipeline, features, task, *check_rows(holdout, features))
    except ClientError as e:  # onnxfiles refused the file: its words say why
        check = OnnxCheck(passed=False, reason=str(e))
    except (Exception, MemoryError) as e:
        check = OnnxCheck(passed=False, reason=f"the ONNX model could not be checked ({type(e).__name__}: {_said(e)})")
    check_s = perf_counter() - converted
    if not check.passed:
        check.reason = f"{check.reason}; {SERVED_BY_SKLEARN}"[:2000]
        return Compiled(None, OnnxModel(check=check, versions=found), convert_s, check_s)
    return Compiled(data, OnnxModel(check=check, versions=found), convert_s, check_s)


def _failed(reason: str, convert_s: float, check_s: float, found: dict[str, str]) -> Compiled:
    check = OnnxCheck(passed=False, reason=reason[:2000])
    return Compiled(None, OnnxModel(check=check, versions=found), convert_s, check_s)


def _too_big(size: str) -> str:
    return (
        f"the ONNX file would be {size}, over the {MAX_ONNX_BYTES // 2**20} MiB a model file may be; fewer or "
        f"shallower trees (n_estimators, max_depth, min_samples_leaf) make it smaller; {SERVED_BY_SKLEARN}"
    )


def tree_nodes(pipeline: Pipeline) -> int:
    """The nodes of the estimator's trees (0 for a linear model): what sizes its ONNX file."""
    model = pipeline[-1]
    forest = getattr(model, "estimators_", None)
    if forest is not None and all(hasattr(tree, "tree_") for tree in forest):
        return sum(int(tree.tree_.node_count) for tree in forest)
    boosted = getattr(model, "_predictors", None)  # histogram gradient boosting: one list per iteration
    if boosted is not None:
        return sum(len(predictor.nodes) for iteration in boosted for predictor in iteration)
    return 0


def _said(error: BaseException) -> str:
    """An exception's message on one line, not too long for a reason."""
    return " ".join(str(error).split())[:500] or "no message"


def convert(pipeline: Pipeline, features: Sequence[Feature], task: Task) -> bytes:
    """The ONNX file of the fitted pipeline: inputs named as the features, float32 for numbers
    and booleans, strings for categories; classifiers answer (label, probabilities)."""
    onnx_shim.apply()
    types = [(f.name, _tensor_type(f)) for f in features]
    options = {id(pipeline): {"zipmap": False}} if task == Task.CLASSIFICATION else None
    model = convert_sklearn(pipeline, initial_types=types, target_opset=dict(onnxfiles.TARGET_OPSET), options=options)
    name_inputs(model.graph, [f.name for f in features])
    return bytes(model.SerializeToString())


def name_inputs(graph: onnx.GraphProto, names: Sequence[str]) -> None:
    """Names the graph's inputs as the features: skl2onnx makes C identifiers of them
    ('sepal length (cm)' becomes 'sepal_length__cm_'), and inference feeds each feature by its
    own name. The inputs come in the order of the initial types. A value inside the graph that
    has a feature's name (an output called `label`, say, beside a feature called so) gets
    another: outputs are read by their place, not their name."""
    inputs = [value.name for value in graph.input]
    if len(inputs) != len(names):
        raise ValueError(f"the ONNX graph has {len(inputs)} inputs for {len(names)} features")
    renamed = {old: new for old, new in zip(inputs, names, strict=True) if old != new}
    if not renamed:
        return
    inside = {o for node in graph.node for o in node.output} | {t.name for t in graph.initializer}
    taken = inside | set(inputs) | set(names)
    for name in sorted(inside & set(names)):
        fresh = next(f"{name}_{n}" for n in itertools.count(1) if f"{name}_{n}" not in taken)
        taken.add(fresh)
        renamed[name] = fresh
    # One substitution of every name at once: a feature may take the name another input had.
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = renamed.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]


def _tensor_type(feature: Feature) -> FloatTensorType | StringTensorType:
    return FloatTensorType([None, 1]) if dtype(feature.type) == FLOAT else StringTensorType([None, 1])


def versions(data: bytes | None = None) -> dict[str, str]:
    """The libraries the file was written and checked with, and the opsets it imports."""
    found = {"skl2onnx": skl2onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    opsets = dict(onnxfiles.TARGET_OPSET)
    if data is not None:
        with contextlib.suppress(Exception):  # unreadable: the check says so; the target opsets stand
            opsets = {o.domain: o.version for o in onnx.load_model_from_string(data).opset_import}
    return found | {f"opset {domain or 'ai.onnx'}": str(version) for domain, version in sorted(opsets.items())}


def check_rows(holdout: pd.DataFrame, features: Sequence[Feature]) -> tuple[pd.DataFrame, list[str]]:
    """The rows the check runs, and what each is (for the reason): the holdout's first
    MAX_CHECK_ROWS (it is shuffled already), then edge rows made of its first EDGE_BASE_ROWS."""
    names = [f.name for f in features]
    base = holdout[names].head(EDGE_BASE_ROWS).reset_index(drop=True)
    parts = [(holdout[names].head(MAX_CHECK_ROWS), "a holdout row")]
    parts.append((base.iloc[:1].assign(**{f.name: _missing(f) for f in features}), "every feature missing"))
    parts += [(base.assign(**{f.name: _missing(f)}), f"{f.name!r} missing") for f in features]
    categories = [f for f in features if dtype(f.type) != FLOAT]
    if categories:
        unseen = _unseen(holdout, categories)
        parts.append((base.assign(**{f.name: unseen for f in categories}), "every category unseen in training"))
    numbers = [f for f in features if f.type in NUMERIC]
    for side, where in ((0, "below"), (1, "above")):
        far = {f.name: _far(holdout[f.name], f)[side] for f in numbers}
        if far:
            parts.append((base.assign(**far), f"every number far {where} its training range"))
            parts += [(base.assign(**{n: v}), f"{n!r} far {where} its training range") for n, v in far.items()]
    rows = pd.concat([part for part, _ in parts], ignore_index=True)
    kinds = [kind for part, kind in parts for _ in range(len(part))]
    # Columns keep their dtypes: floats for numbers and booleans, objects for categories.
    return rows.astype({f.name: FLOAT if dtype(f.type) == FLOAT else object for f in features}), kinds


def _missing(feature: Feature) -> float | str:
    return MISSING if dtype(feature.type) == FLOAT else MISSING_CATEGORY


def _unseen(holdout: pd.DataFrame, categories: Sequence[Feature]) -> str:
    seen = {v for f in categories for v in f.categories or []}
    seen |= {v for f in categories for v in holdout[f.name].dropna().unique().tolist()}
    unseen = UNSEEN
    while unseen in seen:
        unseen += "_"
    return unseen


def _far(values: pd.Series, feature: Feature) -> tuple[float, float]:
    """Numbers FAR training ranges below and above the range (the holdout's when the card has
    none, 0 when neither has a value), within FLOAT32_SAFE."""
    seen = values.dropna()
    low = feature.min if feature.min is not None else float(seen.min()) if len(seen) else 0.0
    high = feature.max if feature.max is not None else float(seen.max()) if len(seen) else 0.0
    width = high - low if high > low else max(abs(high), 1.0)
    return max(low - FAR * width, -FLOAT32_SAFE), min(high + FAR * width, FLOAT32_SAFE)


def compare(
    data: bytes, pipeline: Pipeline, features: Sequence[Feature], task: Task, rows: pd.DataFrame, kinds: Sequence[str]
) -> OnnxCheck:
    """How the ONNX file answers against the pipeline on these rows (`reason` says how it fails,
    without the advice); `kinds` says what each row is."""
    session = onnxfiles.session(data, sha256(data), "the converted ONNX model", threads=1)
    inputs = onnxfiles.feed({f.name: rows[f.name].to_numpy() for f in features}, features)
    outputs = session.run(None, inputs)
    if task == Task.CLASSIFICATION:
        return _compare_classes(pipeline, rows, kinds, np.asarray(outputs[1], dtype=np.float64))
    return _compare_predictions(pipeline, rows, kinds, np.asarray(outputs[0], dtype=np.float64).ravel())


def _compare_classes(pipeline: Pipeline, rows: pd.DataFrame, kinds: Sequence[str], ours: np.ndarray) -> OnnxCheck:
    theirs = pipeline.predict_proba(rows)
    if ours.shape != theirs.shape:
        return _wrong(f"the ONNX model answered probabilities of shape {ours.shape}, scikit-learn {theirs.shape}")
    if not np.isfinite(ours).all():
        return _wrong(f"the ONNX model answered NaN or infinite probabilities for {_count(~np.isfinite(ours))}")
    difference = np.abs(ours - theirs).max(axis=1)
    top_two = np.sort(theirs, axis=1)[:, -2:]
    tied = (top_two[:, 1] - top_two[:, 0]) <= PROBABILITY_TOLERANCE  # either class is right
    differ = (ours.argmax(axis=1) != theirs.argmax(axis=1)) & ~tied
    check = OnnxCheck(
        passed=True,
        rows=len(rows),
        max_difference=float(difference.max()),
        tolerance=PROBABILITY_TOLERANCE,
        ties=int(tied.sum()),
    )
    classes = np.asarray(pipeline.classes_).tolist()
    if differ.any():
        row = int(np.flatnonzero(differ)[0])
        check.reason = (
            f"the ONNX model served another class than scikit-learn for {_count(differ)} of {len(rows)} check rows "
            f"(the first: {kinds[row]}, {classes[ours[row].argmax()]!r} for {classes[theirs[row].argmax()]!r})"
        )
    elif check.max_difference is not None and check.max_difference > PROBABILITY_TOLERANCE:
        row = int(difference.argmax())
        check.reason = (
            f"the ONNX model's class probabilities differ from scikit-learn's by up to {check.max_difference:.3g} "
            f"({kinds[row]}), over the tolerance {PROBABILITY_TOLERANCE:g}"
        )
    check.passed = check.reason is None
    return check


def _compare_predictions(pipeline: Pipeline, rows: pd.DataFrame, kinds: Sequence[str], ours: np.ndarray) -> OnnxCheck:
    theirs = np.asarray(pipeline.predict(rows), dtype=np.float64).ravel()
    if ours.shape != theirs.shape:
        return _wrong(f"the ONNX model answered {ours.shape} predictions, scikit-learn {theirs.shape}")
    if not np.isfinite(ours).all():
        return _wrong(f"the ONNX model answered NaN or infinity for {_count(~np.isfinite(ours))}")
    difference = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
    check = OnnxCheck(
        passed=True, rows=len(rows), max_difference=float(difference.max()), tolerance=REGRESSION_TOLERANCE
    )
    if check.max_difference is not None and check.max_difference > REGRESSION_TOLERANCE:
        check.passed = False
        check.reason = (
            f"the ONNX model's predictions differ from scikit-learn's by up to {check.max_difference:.3g} (relative "
            f"to the prediction's size above 1; {kinds[int(difference.argmax())]}), over the tolerance "
            f"{REGRESSION_TOLERANCE:g}"
        )
    return check


def _wrong(reason: str) -> OnnxCheck:
    return OnnxCheck(passed=False, reason=reason)


def _count(mask: np.ndarray) -> str:
    rows = int(mask.any(axis=1).sum()) if mask.ndim > 1 else int(mask.sum())
    return f"{rows} row{'s' * (rows != 1)}"

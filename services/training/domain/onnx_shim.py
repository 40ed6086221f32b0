"""The changes made to skl2onnx 1.20's tree conversion, in one place; both are applied to
`skl2onnx.common.tree_ensemble.add_node`, which every tree node goes through.

1. HistGradientBoosting converts again. scikit-learn 1.9 keeps a node's `missing_go_to_left` as
   a bool, and skl2onnx 1.20 hands it on unchanged as `nodes_missing_value_tracks_true`, an
   ONNX integer attribute: conversion fails with "Field onnx.AttributeProto.ints: Expected an
   int, got a boolean". The wrapper passes it as an int. tests/unit/training/test_onnx_shim.py
   fails once skl2onnx converts without it: then drop this part.
2. Every threshold is the largest float32 at or below scikit-learn's float64 one, as skl2onnx
   already writes those of decision trees and forests (which compare float32 values) but not
   those of histogram gradient boosting (it rounds them to the nearest float32, as for float64
   inputs). Training gives every tree float32-exact numbers (pipeline.frame rounds them), and
   for such x, `x <= threshold` in float64 holds exactly when `x <= floor32(threshold)` does:
   the compiled trees split every value as scikit-learn's do (with nearest thresholds, a value
   0.5 float32 steps below a threshold went the other way: decimal data, where a threshold is
   the midpoint of 1.6 and 1.8 and 1.7 is a value, hit that).
"""

import functools
from typing import Any

import skl2onnx.common.tree_ensemble as tree_ensemble

_PATCHED = "_daprml_patched"  # marks the wrapper, so applying twice wraps once


def apply() -> None:
    """Idempotent: call it before every conversion."""
    current = tree_ensemble.add_node
    if getattr(current, _PATCHED, False):
        return

    @functools.wraps(current)  # keeps the original as __wrapped__, for `remove`
    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        if kwargs.get("dtype") is not None:  # the input's type, which the floor is taken in
            kwargs["adjust_threshold_for_sklearn"] = True
        return current(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    setattr(add_node, _PATCHED, True)
    tree_ensemble.add_node = add_node


def remove() -> None:
    """Undoes `apply` (for the test that checks it is still needed)."""
    current = tree_ensemble.add_node
    if getattr(current, _PATCHED, False):
        tree_ensemble.add_node = current.__wrapped__

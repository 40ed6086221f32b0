"""Model files: skops (no pickle), loaded only after their sha256 and the types they name are
checked. Nothing is deserialized from a file that fails either check.

This duplicates services/training/domain/artifact.py's `load` (services never import each
other); a shared package in services/common could hold both later.
"""

import hashlib
import zipfile

import skops.io as sio
from sklearn.pipeline import Pipeline

from services.inference.domain.errors import ModelUnloadable

# What a fitted pipeline of training's holds beyond skops' defaults (training's TRUSTED).
TRUSTED = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(data: bytes, expected_sha256: str, what: str = "the model file") -> Pipeline:
    """The pipeline in a model file, once its sha256 and the types it names are checked."""
    actual = sha256(data)
    if actual != expected_sha256:
        raise ModelUnloadable(
            f"{what} has sha256 {actual}, not the registered {expected_sha256}: it was altered or "
            f"damaged; it is not loaded or served"
        )
    try:
        named = set(sio.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ModelUnloadable(f"{what} is not a readable skops file ({e}); it is not loaded") from None
    unexpected = sorted(named - TRUSTED)
    if unexpected:
        raise ModelUnloadable(f"{what} names types no pipeline of ours holds: {unexpected}; it is not loaded")
    pipeline = sio.loads(data, trusted=sorted(named))
    if not isinstance(pipeline, Pipeline):
        raise ModelUnloadable(f"{what} holds a {type(pipeline).__name__}, not a Pipeline; it is not loaded")
    return pipeline

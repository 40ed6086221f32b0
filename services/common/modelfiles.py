"""Model files: skops (no arbitrary pickle), addressed by their sha256. Training writes them,
the registry serves them, inference loads them: one reading of what a safe file is.

Loading checks the bytes against the recorded sha256 before reading anything, then refuses a
file naming any type outside the few that our pipelines hold and skops does not already trust
(it trusts scikit-learn's estimators and plain containers by itself). Nothing is deserialized
from a file that fails either check. Imported only by the services that fit or load models:
scikit-learn and skops are theirs, not every service's.
"""

import hashlib
import zipfile

import skops.io as sio
from sklearn.pipeline import Pipeline

from services.common.errors import ClientError

# What a fitted pipeline of ours holds beyond skops' defaults: dtypes, the trees of forests
# and boosting, and linear_svm's calibration. A training test fits every allow-listed
# estimator and checks its file needs nothing else.
TRUSTED = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.tree._tree.Tree",
    }
)


class ModelFileRejected(ClientError):
    """A stored model file that is not the one recorded, or not one of ours: the server's
    fault, not the client's, and no retry brings it back."""

    status = 500


def dumps(pipeline: Pipeline) -> bytes:
    # Compressed: the arrays of fitted trees shrink several times over, and the blob store
    # takes one message of at most 64 MiB.
    return bytes(sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(data: bytes, expected_sha256: str, what: str, rejected: type[ClientError]) -> None:
    """Raises `rejected` unless the bytes are the ones recorded (any model file, before it is read)."""
    actual = sha256(data)
    if actual != expected_sha256:
        raise rejected(
            f"{what}'s sha256 is {actual}, not the recorded {expected_sha256}: "
            f"it was changed or damaged after it was written; it is not loaded or served"
        )


def load(
    data: bytes,
    expected_sha256: str,
    what: str = "the model file",
    rejected: type[ClientError] = ModelFileRejected,
) -> Pipeline:
    """The pipeline in a model file, once its sha256 and the types it names are checked;
    `rejected` is the error a service raises for a file it will not load."""
    verify(data, expected_sha256, what, rejected)
    try:
        named = set(sio.get_untrusted_types(data=data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise rejected(f"{what} is not a readable skops file ({e}); not loaded") from None
    unexpected = sorted(named - TRUSTED)
    if unexpected:
        raise rejected(f"{what} names types no pipeline of ours holds: {unexpected}; not loaded", types=unexpected)
    pipeline = sio.loads(data, trusted=sorted(named))
    if not isinstance(pipeline, Pipeline):
        raise rejected(f"{what} holds a {type(pipeline).__name__}, not a Pipeline; not loaded")
    return pipeline

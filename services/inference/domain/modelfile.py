"""Model files as inference loads them: services/common/modelfiles.py (which holds the one
list of types a model file may name), with inference's own error for a file it will not load
or serve."""

from sklearn.pipeline import Pipeline

from services.common import modelfiles
from services.common.modelfiles import sha256
from services.inference.domain.errors import ModelUnloadable

__all__ = ["load", "sha256"]


def load(data: bytes, expected_sha256: str, what: str = "the model file") -> Pipeline:
    """The pipeline in a model file, once its sha256 and the types it names are checked."""
    return modelfiles.load(data, expected_sha256, what, rejected=ModelUnloadable)

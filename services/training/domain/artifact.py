"""Model files as training writes and reads them: services/common/modelfiles.py (which holds
the one list of types a model file may name), with training's own error for a file it will
not load."""

from sklearn.pipeline import Pipeline

from services.common import modelfiles
from services.common.modelfiles import dumps, sha256
from services.training.domain.errors import ArtifactRejected

__all__ = ["dumps", "load", "sha256"]


def load(data: bytes, expected_sha256: str) -> Pipeline:
    """The pipeline in a model file, once its sha256 and the types it names are checked."""
    return modelfiles.load(data, expected_sha256, rejected=ArtifactRejected)

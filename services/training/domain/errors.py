"""What the training domain refuses, each with the HTTP status a client should see."""

from services.common.errors import ClientError


class TrainingError(ClientError):
    status = 422


class UnknownEstimator(TrainingError):
    """The estimator is not on the allow-list for the dataset's task."""


class InvalidParams(TrainingError):
    """A parameter the estimator does not take, or a value of the wrong type or out of range."""


class NoFeatures(TrainingError):
    """The schema leaves nothing to learn from (every column is the target or text)."""


class BadRows(TrainingError):
    """The rows do not fit the schema they are said to follow."""


class DatasetTooSmall(TrainingError):
    """Too few rows (or classes) to fit a model and still hold some back to evaluate it."""


class IncompatibleModel(TrainingError):
    """A model cannot score these rows: it was fitted on columns they do not have."""

    status = 409


class ArtifactRejected(ClientError):
    """A stored model file failed its checks (checksum or types): the store's or the server's
    fault, not the client's, and nothing in it was run."""

    status = 500

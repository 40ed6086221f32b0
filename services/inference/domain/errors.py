"""What inference refuses, each with the HTTP status a client should see."""

from services.common.errors import ClientError


class InferenceError(ClientError):
    status = 400


class BadTensor(InferenceError):
    """An Open Inference Protocol input that does not fit the model: shape, datatype, name."""


class BadRecord(InferenceError):
    """A JSON record whose value has the wrong type for its feature (names record and field)."""

    status = 422


class UnknownField(InferenceError):
    """A record field or input name the model does not know (names it and the nearest known one)."""

    status = 422


class TooManyRecords(InferenceError):
    status = 413


class ModelMissing(InferenceError):
    status = 404


class ModelUnloadable(InferenceError):
    """A model file that fails its checks (sha256, trusted types) or cannot be fetched: the
    server's fault, not the client's; nothing of it is served."""

    status = 500

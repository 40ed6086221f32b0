"""The Open Inference Protocol's answers (KServe's predict-api v2, REST), for the OpenAPI
document. The routes build them as plain dicts: validating each prediction's answer would cost
time on every request for nothing; tests/api/test_inference_v2.py holds every answer to these."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    # Exactly these fields: a field an answer gains is a field its document gains.
    model_config = ConfigDict(extra="forbid")


class ServerLive(Answer):
    live: bool


class ServerReady(Answer):
    ready: bool = Field(description="whether the sidecar answers (models load on first use)")


class ServerMetadata(Answer):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(Answer):
    name: str
    datatype: str = Field(description="BOOL, INT64, FP64, BYTES ...")
    shape: list[int] = Field(description="-1 for any length")
    parameters: dict[str, Any] | None = Field(None, description="an input's: its feature's signature")


class ModelMetadata(Answer):
    name: str
    versions: list[str] = Field(description="the version that answers: the one asked for, or the champion")
    platform: str = Field(description="the runtime that serves it: onnxruntime or sklearn")
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: dict[str, Any] = Field(
        description="target, runtime, not_compiled (why not onnxruntime), onnx_check, warnings (counts by kind)"
    )


class ModelReady(Answer):
    name: str
    version: str
    ready: bool


class ResponseOutput(Answer):
    name: str = Field(description="predict or predict_proba")
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = Field(None, description="predict_proba's: its classes, in column order")
    data: list[Any] = Field(description="flat, in row-major order")


class InferResponse(Answer):
    model_name: str
    model_version: str = Field(description="the version that served: a canary's, when the traffic table sent it there")
    id: str = Field(description="the request's id, echoed; a new one when it sent none")
    parameters: dict[str, Any] = Field(description="runtime, prediction_ids (one per row, in order), warnings")
    outputs: list[ResponseOutput]

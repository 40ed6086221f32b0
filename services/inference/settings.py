import json
import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from services.common.contracts import MODEL_NAME
from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("inference", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8004, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    registry_app_id: str = "registry"
    """Dapr app id of the registry service, which describes model versions and serves their files."""
    max_loaded_models: int = Field(8, ge=1)
    """Most model versions kept loaded in memory; the least recently used one is unloaded first."""
    max_records: int = Field(10_000, ge=1)
    """Most records (rows) one predict or infer request may hold."""
    reconcile_interval_s: float = Field(30.0, gt=0)
    """How often each replica asks the registry what the aliases it serves name now (it also
    hears of every move by event; this catches the events it missed)."""
    batching: bool = True
    """Whether concurrent requests for one model are batched into one predict call (off: each runs alone)."""
    max_batch_size: int = Field(256, ge=1)
    """Most rows one batched predict call takes; a request with more rows runs alone."""
    max_batch_wait_s: float = Field(0.0, ge=0)
    """How long a request queued behind a running predict may wait for more to join its batch (0: none; those
    queued during the predict batch anyway. Measured: waiting 5 ms cost a compiled model 17% at 32 in flight)."""
    unbatched_models: list[str] = []
    """Models served without batching (by name), when batching is on for the others."""
    compiled: bool = True
    """Whether a version whose ONNX file passed training's check is served by ONNX Runtime (off: scikit-learn)."""
    uncompiled_models: list[str] = []
    """Models served by scikit-learn (by name) when compiled serving is on for the others."""
    onnx_threads: int = Field(1, ge=1)
    """Threads one ONNX Runtime predict call may use (one: the cores are shared with sidecars and other apps)."""
    inline_rows: int = Field(32, ge=0)
    """Compiled predict calls of at most this many rows run on the event loop, not in a thread (0: never)."""
    shadow_max_pending: int = Field(64, ge=1, le=10_000)
    """Shadow copies (requests copied to shadow versions) running at once; past it one is dropped, counted."""
    shadow_timeout_s: float = Field(10.0, gt=0, le=300)
    """Longest a shadow copy may take; past it, it counts as failed."""
    serving_stats_s: float = Field(5.0, ge=0, le=3600)
    """How often this replica sends its serving counters per model version (requests, failures,
    latency; the monitor sums every replica's for the rollouts' gates) when they changed; 0: never."""
    prediction_log_rate: float = Field(1.0, ge=0, le=1)
    """Share of successful prediction calls captured (published, record by record, for the monitor's
    inference tables) for models `prediction_log_rates` does not name: 0 none, 1 every one."""
    prediction_log_rates: Annotated[dict[str, float], NoDecode] = {}
    """Per-model shares overriding `prediction_log_rate`, as a JSON object: '{"iris": 0.1}'."""
    prediction_log_max_rows: int = Field(1000, ge=1)
    """Most records of one call captured (the first ones); the rest are counted, not captured."""
    prediction_log_buffer: int = Field(10_000, ge=1)
    """Most sampled calls held for publishing; beyond it new ones are dropped and counted."""
    prediction_log_buffer_rows: int = Field(100_000, ge=1)
    """Most records the sampled calls held for publishing may have in all (a burst of big calls
    fills it before `prediction_log_buffer` does); beyond it new calls are dropped and counted."""
    prediction_log_flush_s: float = Field(1.0, gt=0)
    """How often the sampled predictions held are published, in bulk."""
    prediction_log_batch: int = Field(100, ge=1)
    """Most sampled predictions one bulk publish carries; a full batch is sent without waiting for the next flush."""

    @field_validator("prediction_log_rates", mode="before")
    @classmethod
    def _rates(cls, value: Any) -> dict[str, float]:
        """A JSON object of model name -> share from the environment (a dict from code), each
        checked here so that a bad one stops the service with words that say which."""
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except ValueError as e:
                raise ValueError(f'not JSON ({e}); expected an object such as {{"iris": 0.1}}') from None
        if not isinstance(value, dict):
            raise ValueError(f'expected a JSON object of model name -> share, such as {{"iris": 0.1}}, not {value!r}')
        out = {}
        for name, share in value.items():
            if not isinstance(name, str) or not re.fullmatch(MODEL_NAME, name):
                raise ValueError(f"{name!r} is not a model name (lower-case letters, digits, '-' and '_')")
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
                raise ValueError(f"model {name!r}: the share must be a number from 0 to 1, not {share!r}")
            out[name] = float(share)
        return out

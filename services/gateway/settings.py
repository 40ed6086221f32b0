from pydantic import Field

from services.common.door import DoorSettings
from services.common.settings import env
from services.gateway.keys.domain import Role


class Settings(DoorSettings):
    app_id: str = Field("gateway", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8000, validation_alias=env("port", "APP_PORT"))
    """Port the public API listens on (the dapr CLI passes it as APP_PORT)."""
    ingestion_app_id: str = "ingestion"
    """Dapr app id of the ingestion service."""
    training_app_id: str = "training"
    """Dapr app id of the training service."""
    registry_app_id: str = "registry"
    """Dapr app id of the registry service."""
    inference_app_id: str = "inference"
    """Dapr app id of the inference service."""
    monitor_app_id: str = "monitor"
    """Dapr app id of the monitor (inference tables)."""
    notifier_app_id: str = "notifier"
    """Dapr app id of the notifier (the Node.js service that follows champions)."""
    gateway_secret: str = "gateway"
    """Name of the gateway's secret in the secret store."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Largest request body the gateway forwards (ingestion's part limit, DAPRML_MAX_PART_BYTES);
    a bigger one is refused with 413 before anything is forwarded."""
    api_keys_secret: str = "api-keys"
    """Name of the secret holding the provisioned API keys (key id -> its record, hashed)."""
    key_cache_s: float = Field(10.0, ge=0)
    """How long API keys read from the stores are used before they are read again."""
    rate_limits: dict[Role, float] = {
        Role.READER: 50,
        Role.INGEST: 20,
        Role.TRAIN: 10,
        Role.PREDICT: 500,
        Role.FEEDBACK: 50,  # each call up to DAPRML_FEEDBACK_MAX_ITEMS actuals
        Role.ADMIN: 100,
    }
    """Calls a second one key may make, by role (a key with several gets the highest; 0: no limit)."""
    rate_burst_s: float = Field(2.0, gt=0)
    """A key may make `rate x rate_burst_s` calls at once before the rate applies."""
    require_app_token: bool = False
    """The gateway is called by clients, not by its sidecar: API keys guard it, not the app token."""
    dead_letters_kept: int = Field(100, ge=1, le=10_000)
    """How many dead letters (events a subscriber gave up on) the gateway keeps, the latest."""
    breaker_failures: int = Field(5, ge=1)
    """Calls in a row that do not reach a service (its sidecar answers an ERR_ code, or cannot be
    reached) before the gateway holds calls to it back; the service's own answers, a 4xx
    included, never count."""
    breaker_open_s: float = Field(2.0, gt=0)
    """How long calls to a service are held back (503 at once) before one goes through to try."""
    forget_instances_after_s: float = Field(300.0, gt=0)
    """How long GET /api/status keeps listing an instance as down after its last heartbeat (a
    replica scaled away without a word, or replaced under another name)."""
    roundtrip_timeout_s: float = 20.0
    """How long the round trip check waits for the subscriber to record the ping."""
    prometheus_url: str = ""
    """Prometheus the operations page reads (e.g. http://127.0.0.1:9090); empty: not configured."""
    traces_url: str = ""
    """The trace backend's query API and UI (Jaeger, e.g. http://127.0.0.1:16686); empty: not configured."""
    traces_ui_url: str = ""
    """The trace UI as a person's browser reaches it, for the console's links, when not traces_url
    (in containers: the published port, not the name on the stack's network)."""
    operations_timeout_s: float = Field(2.5, gt=0, le=10)
    """How long one call to Prometheus or the trace backend may take before the page says it is not answering."""

    def app_ids(self) -> dict[str, str]:
        """Service name -> Dapr app id, for every service of the stack, the gateway included."""
        return {
            "ingestion": self.ingestion_app_id,
            "training": self.training_app_id,
            "registry": self.registry_app_id,
            "inference": self.inference_app_id,
            "monitor": self.monitor_app_id,
            "notifier": self.notifier_app_id,
            "gateway": self.app_id,
        }

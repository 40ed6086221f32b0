from pydantic import Field

from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("registry", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8003, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    max_page_models: int = 1000
    """Most models one page of GET /api/models lists."""
    max_page_history: int = Field(200, ge=1, le=1000)
    """Most entries one page of GET /api/models/{name}/history holds."""
    update_attempts: int = 20
    """How often a change to a model record retries when another change to it wins the race."""
    outbox_interval_s: float = 10.0
    """How often events that could not be published when their change was made are retried."""
    rollout_poll_s: float = Field(10.0, gt=0, le=3600)
    """How often a rollout's shadow or canary step reads the monitor's evidence and judges its gates."""
    monitor_app_id: str = "monitor"
    """The monitor's Dapr app id: a rollout's gates read its evidence."""

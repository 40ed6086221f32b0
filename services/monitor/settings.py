from pydantic import Field

from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("monitor", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8006, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    capture_max_rows: int = Field(10_000, ge=1)
    """Rows a batch of captured predictions gathers before it is written as parts at once."""
    capture_max_events: int = Field(10, ge=1)
    """Deliveries a batch gathers before it is written at once: no more than the pub/sub delivers
    at a time (Redis' `concurrency`, 10 by default), or every batch would wait `capture_max_wait_s`."""
    capture_max_wait_s: float = Field(2.0, gt=0, le=10)
    """Longest a delivery waits for its batch to be written (the broker sends an event again when
    it is held too long: Redis after its processingTimeout, 15 s by default)."""
    capture_max_held_rows: int = Field(50_000, ge=1)
    """Rows held in memory, gathering or being written; a delivery beyond it is refused and sent again later."""
    index_segment_parts: int = Field(1000, ge=1, le=5000)
    """Parts one index document of a model's day lists; more open another (a document stays well
    under the state stores' item limits: DynamoDB's 400 KB)."""
    page_max_parts: int = Field(200, ge=1)
    """Parts one page of GET .../predictions reads before it answers with the rows it is sure of."""

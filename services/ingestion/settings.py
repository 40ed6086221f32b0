from pydantic import Field

from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("ingestion", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8001, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    max_part_bytes: int = 32 * 1024 * 1024
    """Largest body of a one-shot upload or of one part; bigger files go up in parts."""
    max_columns: int = 500
    """Most columns a dataset may have."""
    max_field_chars: int = 10_000
    """Longest text or category value, in characters; longer ones reject their row."""
    max_listed_rejections: int = 20
    """How many rejected rows an upload answer lists with their reasons (all are counted)."""
    max_page_rows: int = 1000
    """Most rows one page of GET .../rows returns."""
    max_page_datasets: int = 1000
    """Most datasets one page of GET /api/datasets lists."""
    max_parts: int = 10_000
    """Highest part number of a multi-part upload."""
    commit_attempts: int = 20
    """How often a commit retries when another commit to the same dataset wins the race."""
    outbox_interval_s: float = 10.0
    """How often events that could not be published at commit time are retried (and expired
    uploads cleaned up)."""
    upload_ttl_s: float = 24 * 3600
    """How long a multi-part upload may stay open; after that it is aborted and its parts deleted."""

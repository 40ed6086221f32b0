from pydantic import Field

from services.common.settings import ServiceSettings, env


class Settings(ServiceSettings):
    app_id: str = Field("training", validation_alias=env("app_id", "APP_ID"))
    """This service's Dapr app id (the dapr CLI passes it as APP_ID)."""
    port: int = Field(8002, validation_alias=env("port", "APP_PORT"))
    """Port the HTTP server listens on (the dapr CLI passes it as APP_PORT)."""
    ingestion_app_id: str = "ingestion"
    """Dapr app id of the ingestion service, which holds the datasets."""
    registry_app_id: str = "registry"
    """Dapr app id of the registry service, where trained models are registered."""
    fit_workers: int = Field(1, ge=0)
    """Processes that fit and evaluate models, beside the service's own (CPU-bound work there
    would stall its event loop and health checks); 0 fits in a thread of the service (tests)."""
    seed: int = 42
    """Seed of every holdout split and estimator: the same data and parameters give the same model."""
    promotion_attempts: int = Field(3, ge=1)
    """How often a job compares its model with a champion that keeps moving before it gives up."""
    max_listed_jobs: int = Field(100, ge=1)
    """Most jobs one page of GET /api/training/jobs returns."""

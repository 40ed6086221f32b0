from pydantic import Field

from services.common.settings import ServiceSettings, env
from services.training.domain.estimators import Bounds


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
    would stall its event loop and health checks): at most this many jobs compute at once, the
    others wait (stage `queued`). 0 fits in a thread of the service (tests; nothing there can be
    killed)."""
    fit_memory_mb: int = Field(4096, ge=0)
    """Address space a fit worker may hold (RLIMIT_AS), in MiB; a fit that needs more fails its
    job saying so. 0: no limit. A worker holds about 620 MiB once its libraries are loaded (the
    ONNX converter and runtime included), and reached 2.2 GiB fitting gradient boosting on 1M
    rows of 10 columns."""
    job_timeout_s: float = Field(3600.0, gt=0)
    """Wall-clock limit of a job, from its submission: past it, its worker is killed and the job
    fails saying so."""
    cancel_check_s: float = Field(1.0, gt=0)
    """While a worker computes a step, how often the engine is asked whether the job's workflow
    was terminated (canceled through another replica, or by hand): then the worker is killed."""
    max_pending_jobs: int = Field(20, ge=1)
    """Jobs that may be waiting or running at once; one more is refused with 429."""
    max_pending_jobs_per_dataset: int = Field(5, ge=1)
    """Jobs of one dataset that may be waiting or running at once; one more is refused with 429."""
    busy_retry_after_s: int = Field(30, ge=1)
    """The Retry-After of that 429, in seconds."""
    max_trees: int = Field(2000, ge=1)
    """Upper bound of a forest's n_estimators."""
    max_depth: int = Field(64, ge=1)
    """Upper bound of max_depth; a forest's null max_depth (until the leaves are pure) is held to it."""
    max_iterations: int = Field(100_000, ge=1)
    """Upper bound of max_iter (logistic regression, linear SVM, gradient boosting)."""
    seed: int = 42
    """Seed of every holdout split and estimator: the same data and parameters give the same model."""
    promotion_attempts: int = Field(3, ge=1)
    """How often a job compares its model with a champion that keeps moving before it gives up."""
    max_listed_jobs: int = Field(100, ge=1)
    """Most jobs one page of GET /api/training/jobs returns."""

    def bounds(self) -> Bounds:
        return Bounds(max_trees=self.max_trees, max_depth=self.max_depth, max_iterations=self.max_iterations)

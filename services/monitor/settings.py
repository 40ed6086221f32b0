from pydantic import Field, ValidationInfo, field_validator

from services.common.settings import ServiceSettings, env
from services.monitor.domain.schedule import problem


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
    feedback_max_items: int = Field(10_000, ge=1, le=100_000)
    """Items one POST .../feedback may send (more: a 422 asking to split them); each call is one part."""
    feedback_retention_days: int = Field(7, ge=1, le=90)
    """How long after a prediction its feedback still joins it: live metrics hold the captured
    predictions and actuals of this many days (daily metrics go back as far)."""
    live_window_pairs: int = Field(1000, ge=1)
    """The sliding window of live metrics: the last this-many pairs (prediction and actual) ..."""
    live_window_hours: float = Field(24.0, gt=0)
    """... of the predictions made in the last this-many hours."""
    live_max_rows: int = Field(20_000, ge=1, le=1_000_000)
    """Captured predictions, and actuals, held per model for live metrics (a prediction and its
    actual take about 0.8 KB: 16 MB a model at most); past it the oldest are let go and the
    report says `truncated`."""
    live_max_models: int = Field(5, ge=1)
    """Models whose rows are held for live metrics; one more lets go of the least recently asked."""
    live_cache_s: float = Field(10.0, gt=0)
    """How old a live report may be before it is made again (also how often the held models'
    reports, and their gauges, are refreshed in the background)."""
    live_refresh_s: float = Field(1.0, ge=0)
    """A feedback call reads the model's new parts (to tell matched from pending) at most this often."""
    serving_forget_h: float = Field(24.0, ge=1, le=24 * 90)
    """An inference replica not heard from for this many hours is gone: its serving counters are
    folded into the model's totals (they stay counted) and it is no longer listed."""
    serving_max_instances: int = Field(64, ge=1, le=1000)
    """Inference replicas (runs of one) whose serving counters are kept apart per model; past it the
    least recently heard is folded into the totals."""
    evidence_max_rows: int = Field(10_000, ge=1, le=1_000_000)
    """A rollout's evidence reads at most this many of each shadow's newest answers since its step began."""
    registry_app_id: str = "registry"
    """The registry's Dapr app id: drift checks read model cards there and record what they do in
    each model's history."""
    ingestion_app_id: str = "ingestion"
    """Ingestion's Dapr app id: a retrain reads the training data there and commits the new dataset version."""
    training_app_id: str = "training"
    """Training's Dapr app id: a retrain starts its training job there."""
    retrain_max_rows: int = Field(500_000, ge=1, le=10_000_000)
    """Rows of training data a retrain reads at most (held in memory as it is uploaded again);
    a model trained on more is not retrained by policy (the action says so)."""
    retrain_max_captured: int = Field(100_000, ge=1, le=1_000_000)
    """Captured predictions a retrain reads at most, the newest; those with an actual are added."""
    retrain_part_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=32 * 1024 * 1024)
    """Bytes of one part a retrain uploads to ingestion (within ingestion's DAPRML_MAX_PART_BYTES)."""
    check_timeout_s: float = Field(120.0, gt=0, le=3600)
    """Longest one drift check may take (reading its window, the cards, computing); past it the
    check fails, and a smaller window makes it quicker."""
    check_max_parts: int = Field(2000, ge=1)
    """Parts of the inference table one drift check reads at most (its window's newest)."""
    monitoring_outbox_s: float = Field(10.0, gt=0)
    """How often what monitoring still owes (history entries the registry did not take, drift
    events the pub/sub did not) is sent again."""
    retention_days: int = Field(30, ge=1, le=3650)
    """Days of inference tables and feedback kept: parts of older days (UTC) are deleted by the
    retention job. At least DAPRML_FEEDBACK_RETENTION_DAYS: feedback still joins predictions of
    that many days, so both must be there."""
    retention_schedule: str = "@every 1h"
    """When the retention job runs (a Dapr Job, as Dapr's scheduler reads schedules)."""
    retention_max_parts: int = Field(500, ge=1, le=100_000)
    """Parts one run of the retention job deletes at most (the next run goes on)."""

    @field_validator("retention_days")
    @classmethod
    def _keeps_the_feedback_window(cls, days: int, info: ValidationInfo) -> int:
        window = info.data.get("feedback_retention_days")
        if window is not None and days < window:
            raise ValueError(
                f"{days} days would delete predictions and feedback that still join "
                f"(DAPRML_FEEDBACK_RETENTION_DAYS is {window}): keep at least {window} days, "
                "or lower DAPRML_FEEDBACK_RETENTION_DAYS"
            )
        return days

    @field_validator("retention_schedule")
    @classmethod
    def _schedule_the_scheduler_takes(cls, schedule: str) -> str:
        why = problem(schedule)
        if why is not None:
            raise ValueError(why)
        return schedule

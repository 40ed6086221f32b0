"""The monitor's own metrics (beside the kit's per-route HTTP metrics and event deliveries):
what capture takes in and writes, feedback received, live metrics. Capture's name no model: the
prediction log's events name them, and a model's traffic is inference's to count; the live
gauges do, for the few models whose live report the monitor holds."""

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.monitor.domain.retrain import RETRAIN_FAILED, RETRAIN_SKIPPED, RETRAINED

IDS_SENT, IDS_DERIVED = "sent", "derived"
STAGES = ("capture", "read")
MATCHED, PENDING, DUPLICATE, INVALID = "matched", "pending", "duplicate", "invalid"
FEEDBACK_OUTCOMES = (MATCHED, PENDING, DUPLICATE, INVALID)
CHECK_TRIGGERS = ("schedule", "api")
CHECK_DONE, CHECK_SKIPPED, CHECK_FAILED = "done", "skipped", "failed"
CHECK_OUTCOMES = (CHECK_DONE, CHECK_SKIPPED, CHECK_FAILED)
TABLES = ("predictions", "feedback")
RETENTION_DONE, RETENTION_BOUNDED, RETENTION_SKIPPED, RETENTION_FAILED = "done", "bounded", "skipped", "failed"
RETENTION_OUTCOMES = (RETENTION_DONE, RETENTION_BOUNDED, RETENTION_SKIPPED, RETENTION_FAILED)
RETRAIN_OUTCOMES = (RETRAINED, RETRAIN_SKIPPED, RETRAIN_FAILED)


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.events = Counter(
            "daprml_monitor_events_received",
            "Prediction log events received, by where their prediction ids come from (sent: inference's; "
            "derived: made by the monitor for an event from an inference older than prediction ids)",
            ["ids"],
            registry=registry,
        )
        self.rows = Counter(
            "daprml_monitor_rows_written", "Captured predictions written to Parquet parts", registry=registry
        )
        self.parts = Counter(
            "daprml_monitor_parts_written",
            "Parquet parts written (one per model and day of a batch)",
            registry=registry,
        )
        self.duplicates = Counter(
            "daprml_monitor_duplicates_dropped",
            "Predictions dropped as copies of one with the same id, by stage (capture: within a batch; "
            "read: across parts, on each read that met them)",
            ["stage"],
            registry=registry,
        )
        self.write_failures = Counter(
            "daprml_monitor_write_failures",
            "Batches of captured predictions that could not be written (their events are delivered again)",
            registry=registry,
        )
        for ids in (IDS_SENT, IDS_DERIVED):
            self.events.labels(ids)
        for stage in STAGES:
            self.duplicates.labels(stage)
        # Ground truth and live metrics (feedback.py, live.py). The live gauges name the model and
        # version: only those whose live report the monitor holds (DAPRML_LIVE_MAX_MODELS at most).
        self.feedback = Counter(
            "daprml_monitor_feedback_received",
            "Feedback items received, by outcome (matched: joined with a captured prediction; pending: "
            "no captured prediction yet; duplicate: the prediction had an actual already; invalid: in a "
            "refused body)",
            ["outcome"],
            registry=registry,
        )
        for outcome in FEEDBACK_OUTCOMES:
            self.feedback.labels(outcome)
        self.live = Gauge(
            "daprml_monitor_live_metric",
            "A model version's primary live metric over the sliding window (accuracy for classifiers, "
            "rmse for regressors), as of its last live report",
            ["model", "version", "metric"],
            registry=registry,
        )
        self.live_pairs = Gauge(
            "daprml_monitor_live_pairs",
            "Pairs (a captured prediction and its actual) a model version's live metric is based on",
            ["model", "version"],
            registry=registry,
        )
        # Drift checks (monitoring.py): how many ran, by what started them and how they ended, and
        # the versions found drifted. No model label: GET .../monitoring names them.
        self.checks = Counter(
            "daprml_monitor_drift_checks",
            "Drift checks, by trigger (schedule: the model's Dapr Job; api: POST .../monitoring/check) "
            "and outcome (done; skipped: one of that model was running; failed)",
            ["trigger", "outcome"],
            registry=registry,
        )
        for trigger in CHECK_TRIGGERS:
            for outcome in CHECK_OUTCOMES:
                self.checks.labels(trigger, outcome)
        self.drifted = Counter(
            "daprml_monitor_drifted_versions",
            "Model versions a drift check found drifted (one per version and check)",
            registry=registry,
        )
        self.owed_dropped = Counter(
            "daprml_monitor_owed_dropped",
            "History entries and drift events let go unsent: the registry refused them, or a model's outbox was full",
            registry=registry,
        )
        self.retrains = Counter(
            "daprml_monitor_retrains",
            "Retrain orders carried out, by outcome (retrained: a dataset version made and its training job started; "
            "retrain-skipped: too few actuals, or nothing new; retrain-failed: refused by ingestion, training or "
            "the registry)",
            ["outcome"],
            registry=registry,
        )
        for outcome in RETRAIN_OUTCOMES:
            self.retrains.labels(outcome)
        # Retention (retention.py): parts and rows deleted by table (predictions, feedback), each
        # run's outcome, and parts an index named that the blob store did not have when read.
        self.retention_parts = Counter(
            "daprml_monitor_retention_parts_deleted",
            "Parquet parts deleted by retention (older than DAPRML_RETENTION_DAYS), by table",
            ["table"],
            registry=registry,
        )
        self.retention_rows = Counter(
            "daprml_monitor_retention_rows_deleted",
            "Rows in the parts retention deleted, by table",
            ["table"],
            registry=registry,
        )
        self.retention_runs = Counter(
            "daprml_monitor_retention_runs",
            "Retention runs (the retention job firing), by outcome (done: nothing past retention is left; "
            "bounded: it stopped at DAPRML_RETENTION_MAX_PARTS, the next run goes on; skipped: one was running; "
            "failed)",
            ["outcome"],
            registry=registry,
        )
        self.parts_missing = Counter(
            "daprml_monitor_parts_missing",
            "Parts an index named that the blob store did not have when read (passed over; retention "
            "interrupted between deleting a part and forgetting it leaves such a name until its next run)",
            ["table"],
            registry=registry,
        )
        for table in TABLES:
            self.retention_parts.labels(table)
            self.retention_rows.labels(table)
            self.parts_missing.labels(table)
        for outcome in RETENTION_OUTCOMES:
            self.retention_runs.labels(outcome)

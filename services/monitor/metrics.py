"""The monitor's own metrics (beside the kit's per-route HTTP metrics and event deliveries):
what capture takes in and writes. No label names a model: the prediction log's events name
them, and a model's traffic is inference's to count."""

from prometheus_client import CollectorRegistry, Counter

IDS_SENT, IDS_DERIVED = "sent", "derived"
STAGES = ("capture", "read")


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

"""Ingestion's own metrics (beside the kit's per-route HTTP metrics): what arrives (bytes, rows
by what became of them, upload parts) and what is committed. No label names a dataset: a
client chooses those (one series per name it invents would be the client's to make)."""

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter

from services.common.errors import ClientError

ACCEPTED, REJECTED, DUPLICATE = "accepted", "rejected", "duplicate"


def outcome_of(error: BaseException) -> str:
    """refused (the client's fault: 4xx) or failed (the server's)."""
    return "refused" if isinstance(error, ClientError) and error.status < 500 else "failed"


class IngestionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.bytes = Counter(
            "daprml_ingestion_received_bytes",
            "Bytes of dataset bodies received by the use cases (upload parts and one-shot uploads, refused ones "
            "included; not those the size limit refused before reading them)",
            registry=registry,
        )
        self.rows = Counter(
            "daprml_ingestion_rows",
            "Rows received in parts and one-shot uploads, by what became of them: accepted (kept), rejected "
            "(failed validation; a body whose rows were all rejected counts too), duplicate (an exact repeat of "
            "an earlier row of the same body, dropped)",
            ["outcome"],
            registry=registry,
        )
        self.parts = Counter(
            "daprml_ingestion_upload_parts",
            "Parts sent to an upload session: stored, unchanged (the same part again), refused, failed",
            ["outcome"],
            registry=registry,
        )
        self.commits = Counter(
            "daprml_ingestion_commits",
            "Commits of uploads (one-shot uploads included): committed (a new version), unchanged (identical "
            "to the latest version), repeated (the upload was committed already), refused, failed",
            ["outcome"],
            registry=registry,
        )
        self.committed_rows = Counter(
            "daprml_ingestion_committed_rows",
            "Rows of the new dataset versions committed (after duplicates across parts were dropped)",
            registry=registry,
        )

    def received(self, size: int) -> None:
        self.bytes.inc(size)

    def stored(self, accepted: int, rejected: int, duplicates: int) -> None:
        """One body's rows, once it is stored (or refused, all its rows rejected)."""
        self.rows.labels(ACCEPTED).inc(accepted)
        self.rows.labels(REJECTED).inc(rejected)
        self.rows.labels(DUPLICATE).inc(duplicates)

    def refused(self, report: Mapping[str, object]) -> None:
        """A body whose rows were all rejected, from its report (PartReport's fields)."""
        rejected, duplicates = report.get("rows_rejected"), report.get("duplicates_dropped")
        self.stored(0, rejected if isinstance(rejected, int) else 0, duplicates if isinstance(duplicates, int) else 0)

    def committed(self, outcome: str, rows: int = 0) -> None:
        self.commits.labels(outcome).inc()
        self.committed_rows.inc(rows)

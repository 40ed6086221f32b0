"""Ground truth: the actual values callers send back (POST /api/models/{name}/feedback), kept
as each model's feedback table and joined with its captured predictions for live metrics
(live.py).

The feedback table is the inference tables' kind (tables.py): Parquet parts under
monitor/feedback/<model>/<day received>/, indexed in the state store (feedback:<model>...). A
call is validated whole before anything is written and is then one part: a call refused writes
nothing, and a call that fails while writing can be sent again (what was written of it is
dropped as duplicates). The first actual received for a prediction is the one kept.
"""

from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from services.common.errors import ClientError
from services.common.ports import BlobStore, StateStore
from services.monitor import parquet
from services.monitor.domain.feedback import FeedbackAnswer, FeedbackItem, FeedbackRow, first_of_each
from services.monitor.live import FEEDBACK, LiveTracker
from services.monitor.metrics import DUPLICATE, INVALID, MATCHED, PENDING, MonitorMetrics
from services.monitor.tables import Codec, PartTable

FEEDBACK_CODEC = Codec[FeedbackRow](
    model=lambda r: r.model,
    at=lambda r: r.received_at,  # filed by the day received: a prediction's day is not in its id
    order=lambda r: r.received_at,  # one call's rows share it: they keep the body's order
    encode=parquet.encode_feedback,
    decode=parquet.decode_feedback,
)


def feedback_table(
    state: StateStore, blobs: BlobStore, segment_parts: int, metrics: MonitorMetrics | None = None
) -> PartTable[FeedbackRow]:
    return PartTable(FEEDBACK, FEEDBACK_CODEC, state, blobs, segment_parts, metrics)


class TooManyItems(ClientError):
    status = 422


def items_in_error(exc: ValidationError) -> int:
    """How many items of a refused body were wrong (1 when the body is not a list at all)."""
    places = {e["loc"][0] for e in exc.errors() if e["loc"] and isinstance(e["loc"][0], int)}
    return len(places) or 1


class FeedbackService:
    def __init__(
        self,
        table: PartTable[FeedbackRow],
        live: LiveTracker,
        max_items: int,
        metrics: MonitorMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.table, self.live, self.max_items, self.metrics, self.clock = table, live, max_items, metrics, clock

    def refused(self, items: int) -> None:
        """Counts the items of a body refused before it reached `receive` (not valid)."""
        self.metrics.feedback.labels(INVALID).inc(items)

    async def receive(self, model: str, items: list[FeedbackItem], actor: str) -> FeedbackAnswer:
        """Keeps each item's actual unless its prediction has one already, and says which were
        matched with a captured prediction, which wait for theirs, and which were duplicates."""
        if len(items) > self.max_items:
            self.refused(len(items))
            raise TooManyItems(
                f"{len(items)} items; one call sends at most {self.max_items} (DAPRML_FEEDBACK_MAX_ITEMS): "
                "send the rest in another call"
            )
        async with self.live.rows_of(model) as held:
            kept, duplicates = first_of_each(items, held.truths)
            matched = sum(1 for item in kept if item.prediction_id in held.predictions)
            received_at = self.clock()
            rows = [
                FeedbackRow(
                    prediction_id=item.prediction_id,
                    model=model,
                    actual=item.actual,
                    received_at=received_at,
                    actor=actor,
                )
                for item in kept
            ]
            if rows:
                held.absorb(rows, await self.table.write(rows))
        pending = len(kept) - matched
        for outcome, count in ((MATCHED, matched), (PENDING, pending), (DUPLICATE, duplicates)):
            self.metrics.feedback.labels(outcome).inc(count)
        return FeedbackAnswer(
            model=model,
            received=len(items),
            accepted=len(kept),
            matched=matched,
            pending=pending,
            duplicates=duplicates,
            received_at=received_at,
        )

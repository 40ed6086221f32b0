"""The monitor's use cases: capture the prediction log as inference tables, read them back."""

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.common.contracts.monitoring import PredictionsPage
from services.common.errors import ClientError
from services.common.events import InvalidEvent, PredictionLogged
from services.monitor.capture import Capture
from services.monitor.domain.pages import Cursor
from services.monitor.domain.rows import rows_of
from services.monitor.metrics import IDS_DERIVED, IDS_SENT, MonitorMetrics
from services.monitor.tables import InferenceTables


class AfterWithoutSince(ClientError):
    status = 422


class MonitorService:
    def __init__(self, capture: Capture, tables: InferenceTables, metrics: MonitorMetrics):
        self.capture, self.tables, self.metrics = capture, tables, metrics

    async def on_prediction_logged(self, attributes: dict[str, Any], payload: PredictionLogged) -> None:
        """Keeps the event's records as rows of the model's inference table; returns once they
        are written (capture.py: why the delivery waits)."""
        try:
            rows, derived = rows_of(payload)
        except ValidationError as exc:  # no retry makes these rows valid
            raise InvalidEvent(f"the event's records are not valid rows: {exc}") from None
        self.metrics.events.labels(IDS_DERIVED if derived else IDS_SENT).inc()
        await self.capture.take(rows)

    async def predictions(
        self, model: str, since: datetime | None, after: str | None, limit: int, shadow: int | None = None
    ) -> PredictionsPage:
        """The model's captured predictions from `since` on (after `after`, a prediction at that
        time), in time order. A model nothing was captured of, or none by that name: an empty page."""
        if after is not None and since is None:
            raise AfterWithoutSince(
                "`after` names the last prediction of a page and needs that page's `next_since` as `since`"
            )
        return await self.tables.page(model, Cursor(since, after), limit, shadow)

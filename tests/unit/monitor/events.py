"""Prediction log events as inference publishes them, for the monitor's tests."""

from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.contracts.monitoring import new_call_id, prediction_ids
from services.common.events import PredictionLogged

T0 = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


def logged(
    records: int = 2,
    at: datetime = T0,
    model: str = "iris",
    version: int = 1,
    call_id: str | None = None,
    with_ids: bool = True,
    **fields: Any,
) -> PredictionLogged:
    """One call of `records` records, each input {"x": i}, predicted as class i % 2."""
    call_id = call_id or new_call_id()
    return PredictionLogged(
        model=model,
        version=version,
        runtime="sklearn",
        request_id=f"req-{call_id[:8]}",
        at=at,
        records=records,
        prediction_ids=prediction_ids(call_id, records) if with_ids else [],
        inputs=[{"x": i} for i in range(records)],
        predictions=[i % 2 for i in range(records)],
        latency_ms=1.0,
        **fields,
    )


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)

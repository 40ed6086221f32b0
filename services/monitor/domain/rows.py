"""An event of the prediction log as rows of an inference table, and the order rows are read in.

Rows are ordered by their time, then their call's id, then their place in the call: a call's
rows share its time, and `abc-10` sorts after `abc-9` here, not as text does.
"""

import hashlib
from datetime import UTC, datetime

from services.common.contracts.monitoring import CapturedPrediction, label_key
from services.common.events import PredictionLogged

Key = tuple[datetime, str, int]
"""Where a row sits in a table's order: (time, call id, place in the call)."""

REQUEST_ID_LENGTH = 200  # CapturedPrediction.request_id's bound; longer ones are cut


def key_of(prediction_id: str, at: datetime) -> Key:
    call, _, place = prediction_id.rpartition("-")
    return (utc(at), call, int(place))


def row_key(row: CapturedPrediction) -> Key:
    return key_of(row.prediction_id, row.at)


def utc(at: datetime) -> datetime:
    """An aware time in UTC; a time without a zone is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def day_of(at: datetime) -> str:
    """The day (UTC) a row's time falls on, as its table's parts are filed: YYYY-MM-DD."""
    return utc(at).strftime("%Y-%m-%d")


def derived_call_id(event: PredictionLogged) -> str:
    """A call id for an event from an inference replica older than prediction ids: made from
    what identifies the call, so that a redelivered copy gets the same ids (and is dropped as a
    duplicate). Nobody was told these ids: such rows serve drift, never feedback."""
    what = f"{event.model}|{event.version}|{event.request_id}|{utc(event.at).isoformat()}"
    return hashlib.blake2b(what.encode(), digest_size=16).hexdigest()


def rows_of(event: PredictionLogged) -> tuple[list[CapturedPrediction], bool]:
    """One row per record the event carries (the first records of the call, when it had more
    than inference captures of one call), and whether their ids were derived here (an event
    that names none)."""
    ids = event.prediction_ids
    derived = not ids
    if derived:
        call = derived_call_id(event)
        ids = [f"{call}-{i}" for i in range(len(event.inputs))]
    at = utc(event.at)
    rows = []
    for i, (prediction_id, inputs, output) in enumerate(zip(ids, event.inputs, event.predictions, strict=True)):
        probabilities = None
        if event.probabilities is not None and event.classes:
            # By the class as label_key names it; a class given no probability is left out.
            probabilities = {
                label_key(c): p for c, p in zip(event.classes, event.probabilities[i], strict=False) if p is not None
            }
        rows.append(
            CapturedPrediction(
                prediction_id=prediction_id,
                at=at,
                model=event.model,
                version=event.version,
                runtime=event.runtime,
                inputs=inputs,
                output=output,
                probabilities=probabilities,
                warnings=event.warnings[i] if event.warnings else [],
                request_id=event.request_id[:REQUEST_ID_LENGTH],
                shadow=event.shadow,
            )
        )
    return rows, derived


def shadow_key(model: str, version: int) -> str:
    """Where a shadow version's answers are kept in the shadows table: by model and version (they
    share their prediction ids with the answers the callers got, and with other shadows')."""
    return f"{shadow_prefix(model)}{version}"


def shadow_prefix(model: str) -> str:
    """What the shadows table's keys of a model's versions begin with."""
    return f"{model}.v"


def batch_key(row: CapturedPrediction) -> str:
    """A row's identity in a batch: its prediction id, and for a shadow's also its version."""
    return f"{row.prediction_id}@{row.version}" if row.shadow else row.prediction_id

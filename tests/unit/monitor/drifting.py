"""For the monitoring tests: a model card with reference distributions, captured rows drawn from
its training distribution (or shifted), and a fake registry answering the monitor's calls."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from services.common.clients import RegistryClient
from services.common.contracts import Feature, ModelCard, Task
from services.common.contracts.models import HistoryEntry, Note
from services.common.contracts.monitoring import CapturedPrediction, new_call_id, prediction_ids
from services.common.ports import Reply
from services.common.state import Documents
from services.monitor.domain.record import MonitoringRecord
from services.monitor.domain.reports import VersionReport
from services.monitor.metrics import MonitorMetrics
from services.monitor.monitoring import Monitoring, Names
from services.monitor.ports import MonitorPorts
from services.monitor.tables import InferenceTables
from services.training.domain.reference import reference
from tests.fakes import FakeInvoker, fake_ports

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FEATURES = [Feature(name="x", type="number"), Feature(name="colour", type="category", categories=["blue", "red"])]


def draw(n: int, seed: int, x_shift: float = 0.0, colour_p: float = 0.6) -> list[dict]:
    """`n` rows: x normal (shifted by `x_shift`), colour red with probability `colour_p`."""
    rng = np.random.default_rng(seed)
    x, colour = rng.normal(x_shift, 1, n), rng.choice(["red", "blue"], n, p=[colour_p, 1 - colour_p])
    return [{"x": float(x[i]), "colour": str(colour[i])} for i in range(n)]


def predict(records: list[dict]) -> list[str]:
    return ["yes" if r["colour"] == "red" else "no" for r in records]


def card(with_reference: bool = True, x_shift: float = 0.0) -> ModelCard:
    """A classifier's card, its reference from 3,000 training rows (x shifted by `x_shift`)."""
    training = draw(3000, seed=0, x_shift=x_shift)
    distributions = reference(
        pd.DataFrame(training), FEATURES, np.array(predict(training), dtype=object), Task.CLASSIFICATION
    )
    return ModelCard(
        task="classification",
        target="y",
        features=FEATURES,
        classes=["no", "yes"],
        reference=distributions if with_reference else None,
    )


def captured(
    records: list[dict], version: int = 1, model: str = "iris", at: datetime | None = None
) -> list[CapturedPrediction]:
    """The records as one call's rows of the inference table, a millisecond apart, from `at`
    (5 minutes before NOW by default)."""
    at = at or NOW - timedelta(minutes=5)
    ids = prediction_ids(new_call_id(), len(records))
    return [
        CapturedPrediction(
            prediction_id=pid,
            at=at + timedelta(milliseconds=i),
            model=model,
            version=version,
            runtime="sklearn",
            inputs=record,
            output=output,
        )
        for i, (pid, record, output) in enumerate(zip(ids, records, predict(records), strict=True))
    ]


LINEAGE = {
    "dataset": "iris-data",
    "dataset_version": 1,
    "schema_hash": "h1",
    "estimator": "random_forest",
    "params": {"n_estimators": 20},
    "job_id": "iris-data-v1-random-forest-0123456789ab",
}
"""Each version's lineage, as the registry answers it."""


def version_info(model: str, version: int, model_card: ModelCard) -> dict:
    return {
        "model": model,
        "version": version,
        "artifact": {"key": f"models/{model}/{version}.skops", "sha256": "0" * 64, "size": 1},
        "card": model_card.model_dump(mode="json"),
        "lineage": LINEAGE,
    }


class FakeRegistry(FakeInvoker):
    """The registry as the monitor calls it: the model's aliases, each version's card, and the
    history entries it records (in `notes`). `down` answers every call as daprd does for an
    unreachable app; `notes_down` only those that record history entries."""

    def __init__(self, model: str = "iris", champion: int | None = 1, cards: dict[int, ModelCard] | None = None):
        super().__init__()
        self.model, self.champion = model, champion
        self.cards = cards if cards is not None else {1: card()}
        self.notes: list[Note] = []
        self.down = self.notes_down = False

    async def call(
        self, app_id: str, method: str, http_verb: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        self.calls.append((app_id, method, http_verb))
        if self.down or (self.notes_down and method.startswith("internal/")):
            return Reply(500, json.dumps({"errorCode": "ERR_DIRECT_INVOKE", "message": "down"}).encode())
        base = f"api/models/{self.model}"
        if app_id != "registry":
            return Reply(404, b'{"detail": "no such app"}')
        if method == base:
            aliases = {"champion": self.champion} if self.champion is not None else {}
            return Reply(200, json.dumps({"name": self.model, "aliases": aliases}).encode())
        if method.startswith(f"{base}/versions/"):
            version = int(method.rsplit("/", 1)[1])
            if version not in self.cards:
                return Reply(404, b'{"detail": "no such version"}')
            return Reply(200, json.dumps(version_info(self.model, version, self.cards[version])).encode())
        if method == f"internal/models/{self.model}/history" and http_verb == "POST":
            note = Note.model_validate_json(body)
            self.notes.append(note)
            entry = HistoryEntry(
                seq=len(self.notes),
                at=NOW,
                actor=note.actor or "monitor",
                action=note.action,
                reason=note.reason,
                details=note.details,
            )
            return Reply(201, entry.model_dump_json().encode())
        return Reply(404, b'{"detail": "there is no such model"}')


def monitoring(
    registry: FakeRegistry | None = None,
    clock=lambda: NOW,
    timeout_s: float = 60,
    max_parts: int = 100,
    retrainer=None,
    **ports,
):
    """The monitor's Monitoring over fake ports (those given, the fake registry as its invoker),
    at NOW; and its ports and tables (to write captured rows into)."""
    bag = fake_ports(MonitorPorts, invoker=registry or FakeRegistry(), **ports)
    metrics = MonitorMetrics()
    tables = InferenceTables(bag.state, bag.blobs, 1000, 200, metrics)
    built = Monitoring(
        Documents(bag.state, MonitoringRecord),
        Documents(bag.state, VersionReport),
        Documents(bag.state, Names),
        tables,
        RegistryClient(bag.invoker, "registry"),
        bag.jobs,
        bag.publisher,
        metrics,
        app_id="monitor",
        timeout_s=timeout_s,
        max_parts=max_parts,
        clock=clock,
        retrainer=retrainer(bag, tables) if retrainer is not None else None,
    )
    return built, bag, tables

"""Training listens for committed dataset versions: the trigger for (re)training on new data.

For now it records which versions were announced; training runs come with the training
feature. Delivery is at least once, so recording is idempotent.
"""

from typing import Any

from fastapi import APIRouter, Path
from pydantic import RootModel

from services.common.deps import StateDep
from services.common.events import DATASET_NAME, DatasetVersionCommitted
from services.common.ports import StateStore
from services.common.state import Documents


class Announced(RootModel[dict[str, dict[str, Any]]]):
    """Version number (as text) -> the event that announced it."""


def key(dataset: str) -> str:
    return f"announced:{dataset}"


async def record(_attributes: dict[str, Any], event: DatasetVersionCommitted, *, state: StateStore) -> None:
    def add(seen: Announced | None) -> Announced:
        seen = seen or Announced({})
        # A repeated delivery finds its version there already and changes nothing.
        seen.root.setdefault(str(event.version), event.model_dump(mode="json"))
        return seen

    await Documents(state, Announced).update(key(event.dataset), add)


router = APIRouter(prefix="/internal/datasets", tags=["announcements"])


@router.get("/{dataset}/announced")
async def announced(state: StateDep, dataset: str = Path(pattern=DATASET_NAME)) -> dict[str, Any]:
    """The versions of a dataset whose commit event reached training."""
    seen = (await Documents(state, Announced).get(key(dataset))) or Announced({})
    return {"dataset": dataset, "versions": sorted(int(v) for v in seen.root), "events": seen.root}

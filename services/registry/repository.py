"""Where the registry keeps things: in the state store one record per model, one details
document per version, the pages of each model's history and the index of model names;
artifacts are read from the blob binding (training writes them)."""

import hashlib

from pydantic import BaseModel, Field

from services.common.contracts.models import RegisterVersion
from services.common.ports import BlobStore, StateStore
from services.common.state import Change, Documents
from services.registry.domain.history import HistoryPage
from services.registry.domain.model import ModelRecord

INDEX = "models"


class ModelIndex(BaseModel):
    """The names of all models, under one key: the state store cannot list its keys."""

    names: list[str] = Field(default_factory=list)


class ModelRepository:
    def __init__(self, state: StateStore, blobs: BlobStore, attempts: int = 20):
        self.blobs = blobs
        self._models = Documents(state, ModelRecord, attempts)
        self._details = Documents(state, RegisterVersion)
        self._index = Documents(state, ModelIndex)
        self._pages = Documents(state, HistoryPage, attempts)

    async def model(self, name: str) -> ModelRecord | None:
        return await self._models.get(f"model:{name}")

    async def update(self, name: str, change: Change[ModelRecord]) -> ModelRecord | None:
        """Compare-and-swap, retried: see Documents.update."""
        return await self._models.update(f"model:{name}", change)

    @staticmethod
    def page_key(name: str, page: int) -> str:
        return f"model-history:{name}:{page}"

    async def page(self, name: str, page: int) -> HistoryPage | None:
        return await self._pages.get(self.page_key(name, page))

    async def update_page(self, name: str, page: int, change: Change[HistoryPage]) -> HistoryPage | None:
        """Compare-and-swap, retried: see Documents.update."""
        return await self._pages.update(self.page_key(name, page), change)

    async def names(self) -> list[str]:
        index = await self._index.get(INDEX)
        return index.names if index else []

    async def index(self, name: str) -> None:
        def add(index: ModelIndex | None) -> ModelIndex:
            index = index or ModelIndex()
            if name not in index.names:
                index.names = sorted([*index.names, name])
            return index

        await self._index.update(INDEX, add)

    @staticmethod
    def details_key(name: str, request: RegisterVersion) -> str:
        """Known before the version has a number, so the details are stored before the record
        points at them; the same job sending the same artifact again finds the same key."""
        job = hashlib.sha256(request.lineage.job_id.encode()).hexdigest()[:16]
        return f"model-version:{name}:{job}-{request.artifact.sha256[:16]}"

    async def save_details(self, key: str, request: RegisterVersion) -> None:
        await self._details.put(key, request)

    async def delete_details(self, key: str) -> None:
        await self._details.delete(key)

    async def details(self, key: str) -> RegisterVersion | None:
        return await self._details.get(key)

    async def artifact(self, key: str) -> bytes:
        """Raises NotFound when the blob is gone."""
        return await self.blobs.get(key)

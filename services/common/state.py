"""Documents in the state store, changed by compare-and-swap without service code seeing ETags.

Several writers change the same small documents (a dataset record, an index, an upload
session). `Documents.update` reads the document with its ETag, applies a change and writes it
back only if nobody wrote in between; when somebody did, it reads again and re-applies the
change, a bounded number of times. Changes must therefore be safe to apply again to a newer
document: they are functions of what they are given, not of what was read before.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from pydantic import BaseModel

from services.common.ports import ConcurrencyConflict, StateStore

M = TypeVar("M", bound=BaseModel)

Change = Callable[[M | None], M | None | Awaitable[M | None]]


class Busy(ConcurrencyConflict):
    """A document kept changing under us for every attempt: the caller may try again later."""


class Documents(Generic[M]):
    """One kind of document (a pydantic model) under keys of the state store."""

    def __init__(self, state: StateStore, model: type[M], attempts: int = 20):
        self.state, self.model, self.attempts = state, model, attempts

    async def get(self, key: str) -> M | None:
        found = await self.state.get(key)
        return self.model.model_validate_json(found.value) if found else None

    async def put(self, key: str, document: M) -> None:
        """Last write wins: for documents that only one writer ever writes."""
        await self.state.save(key, document.model_dump_json().encode())

    async def create(self, key: str, document: M) -> None:
        """Writes only if the key is new; raises ConcurrencyConflict when it exists."""
        await self.state.create(key, document.model_dump_json().encode())

    async def delete(self, key: str) -> None:
        await self.state.delete(key)

    async def update(self, key: str, change: Change[M]) -> M | None:
        """Applies `change` to the current document (None when there is none) and stores what
        it returns, atomically. A change that returns None, or a document equal to the one it
        got, writes nothing. Returns the document as stored after the change. Raises Busy when
        every attempt lost the race, and whatever the change raises, with nothing written."""
        for _ in range(self.attempts):
            found = await self.state.get(key)
            before = self.model.model_validate_json(found.value) if found else None
            # The change gets its own copy, so an equality check against `before` means something.
            result = change(before.model_copy(deep=True) if before is not None else None)
            after = await result if inspect.isawaitable(result) else result
            if after is None or after == before:
                return before
            data = after.model_dump_json().encode()
            try:
                if found is None:
                    await self.state.create(key, data)
                else:
                    await self.state.save(key, data, etag=found.etag)
                return after
            except ConcurrencyConflict:
                continue  # someone else wrote first: read theirs and apply the change again
        raise Busy(f"{key!r} changed under {self.attempts} attempts in a row to update it; try again")

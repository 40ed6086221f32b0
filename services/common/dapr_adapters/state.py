"""The StateStore port over the SDK's state API, with first-write-wins ETags."""

import grpc
from dapr.clients.grpc._state import Concurrency, StateOptions

from services.common.dapr_adapters.sidecar import SDK_ERRORS, Sidecar, grpc_code, sdk_message
from services.common.ports import ConcurrencyConflict, SidecarUnavailable, Versioned

UNAVAILABLE = "the state store is unavailable"


class DaprStateStore:
    def __init__(self, sidecar: Sidecar, store: str):
        self.sidecar, self.store = sidecar, store

    async def get(self, key: str) -> Versioned | None:
        client = await self.sidecar.client()
        try:
            resp = await client.get_state(self.store, key)
        except SDK_ERRORS as exc:
            raise SidecarUnavailable(f"reading {key!r} from {self.store}: {sdk_message(exc)}", UNAVAILABLE) from exc
        if not resp.data:
            return None
        return Versioned(resp.data, resp.etag)

    async def save(self, key: str, value: bytes, etag: str | None = None) -> None:
        client = await self.sidecar.client()
        options = StateOptions(concurrency=Concurrency.first_write) if etag is not None else None
        try:
            await client.save_state(self.store, key, value, etag=etag, options=options)
        except SDK_ERRORS as exc:
            raise _state_error(exc, f"saving {key!r} to {self.store}") from exc

    async def create(self, key: str, value: bytes) -> None:
        client = await self.sidecar.client()
        try:
            await client.save_state(self.store, key, value, options=StateOptions(concurrency=Concurrency.first_write))
        except SDK_ERRORS as exc:
            # Stores word "already exists" differently (and Redis answers it as an ETag
            # mismatch): whether the key is there now says it.
            if await self.get(key) is not None:
                raise ConcurrencyConflict(f"{key!r} already exists in {self.store}") from exc
            raise SidecarUnavailable(f"creating {key!r} in {self.store}: {sdk_message(exc)}", UNAVAILABLE) from exc

    async def delete(self, key: str, etag: str | None = None) -> None:
        client = await self.sidecar.client()
        options = StateOptions(concurrency=Concurrency.first_write) if etag is not None else None
        try:
            await client.delete_state(self.store, key, etag=etag, options=options)
        except SDK_ERRORS as exc:
            raise _state_error(exc, f"deleting {key!r} from {self.store}") from exc


def _state_error(exc: Exception, doing: str) -> Exception:
    # daprd answers an ETag mismatch with ABORTED (and a malformed ETag with INVALID_ARGUMENT,
    # which for us is an ETag from another store's era: stale as well).
    if grpc_code(exc) in (grpc.StatusCode.ABORTED, grpc.StatusCode.INVALID_ARGUMENT):
        return ConcurrencyConflict(f"{doing}: the ETag is stale ({sdk_message(exc)})")
    return SidecarUnavailable(f"{doing}: {sdk_message(exc)}", UNAVAILABLE)

"""The BlobStore port over an output binding (a local folder, S3, GCS or Azure Blob Storage)."""

import asyncio
import base64

from services.common.dapr_adapters.sidecar import SDK_ERRORS, Sidecar, is_missing, sdk_message
from services.common.ports import BlobTooLarge, NotFound, SidecarUnavailable

UNAVAILABLE = "the blob store is unavailable"


class DaprBlobStore:
    """Blobs through an output binding that supports create/get/delete with a fileName
    (a local folder's binding), a `key` (S3, GCS) or a `blobName` (Azure Blob Storage).

    Data goes out base64-encoded with decodeBase64 set: the local folder's binding (like the
    bucket bindings with that flag) decodes whatever parses as base64 or as a quoted string,
    which would silently alter a binary blob that happens to. Reads come back raw."""

    def __init__(self, sidecar: Sidecar, binding: str):
        self.sidecar, self.binding = sidecar, binding

    async def _call(self, operation: str, key: str, data: bytes = b"") -> bytes:
        metadata = {"fileName": key, "key": key, "blobName": key}  # each binding reads its own name
        if operation == "create":
            # Big blobs are encoded in a worker thread, off the event loop.
            encoded = await asyncio.to_thread(base64.b64encode, data) if len(data) > 1 << 16 else base64.b64encode(data)
            # The whole blob travels in one gRPC message: say so plainly rather than let gRPC refuse it.
            room = self.sidecar.settings.max_message_bytes - (64 << 10)
            if len(encoded) > room:
                raise BlobTooLarge(
                    f"{key!r} is {len(data) / 1e6:.1f} MB; the blob store takes at most {room * 3 // 4 / 1e6:.1f} MB "
                    f"in one piece"
                )
            data, metadata = encoded, metadata | {"decodeBase64": "true"}
        client = await self.sidecar.client()
        try:
            resp = await client.invoke_binding(self.binding, operation, data, binding_metadata=metadata)
        except SDK_ERRORS as exc:
            # daprd answers every failed binding call alike (INTERNAL, ERR_INVOKE_OUTPUT_BINDING):
            # only the component's own words tell a missing blob from a broken store.
            if is_missing(exc):
                raise NotFound(f"no blob {key!r} in {self.binding}") from exc
            raise SidecarUnavailable(f"{operation} {key!r} on {self.binding}: {sdk_message(exc)}", UNAVAILABLE) from exc
        return resp.data

    async def put(self, key: str, data: bytes) -> None:
        await self._call("create", key, data)

    async def get(self, key: str) -> bytes:
        return await self._call("get", key)

    async def delete(self, key: str) -> None:
        await self._call("delete", key)

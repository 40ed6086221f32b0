"""The SecretStore port over the SDK's secrets API."""

from services.common.dapr_adapters.sidecar import SDK_ERRORS, Sidecar, is_missing, sdk_message
from services.common.ports import NotFound, SidecarUnavailable


class DaprSecretStore:
    def __init__(self, sidecar: Sidecar, store: str):
        self.sidecar, self.store = sidecar, store

    async def get(self, name: str) -> dict[str, str]:
        client = await self.sidecar.client()
        try:
            resp = await client.get_secret(self.store, name)
        except SDK_ERRORS as exc:
            # As with bindings, daprd answers every failed secret read with INTERNAL.
            if is_missing(exc):
                raise NotFound(f"no secret {name!r} in {self.store}") from exc
            raise SidecarUnavailable(
                f"reading secret {name!r} from {self.store}: {sdk_message(exc)}", "the secret store is unavailable"
            ) from exc
        return dict(resp.secret)

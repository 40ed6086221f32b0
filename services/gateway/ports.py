from dataclasses import dataclass

from services.common.ports import SecretStore, ServiceInvoker, SidecarPorts, StateStore


@dataclass(kw_only=True)
class GatewayPorts(SidecarPorts):
    invoker: ServiceInvoker
    secrets: SecretStore
    state: StateStore  # API keys issued through the API, and revocations

from dataclasses import dataclass

from services.common.ports import SecretStore, ServiceInvoker, SidecarPorts


@dataclass(kw_only=True)
class GatewayPorts(SidecarPorts):
    invoker: ServiceInvoker
    secrets: SecretStore

from dataclasses import dataclass

from services.common.ports import EventPublisher, SecretStore, ServiceInvoker, SidecarPorts, StateStore


@dataclass(kw_only=True)
class GatewayPorts(SidecarPorts):
    invoker: ServiceInvoker
    secrets: SecretStore
    state: StateStore  # API keys issued through the API, revocations, and the dead letters kept
    publisher: EventPublisher  # dead letters replayed to the topics they came from

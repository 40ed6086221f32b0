from dataclasses import dataclass

from services.common.ports import EventPublisher, ServiceInvoker, SidecarPorts


@dataclass(kw_only=True)
class InferencePorts(SidecarPorts):
    invoker: ServiceInvoker  # the registry: model versions and their files
    publisher: EventPublisher  # the prediction log's events

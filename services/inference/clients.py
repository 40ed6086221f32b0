"""The service inference calls, through the invocation port: the registry, for what a version
or alias names and for its model file."""

from services.common.clients import RegistryClient
from services.common.ports import ServiceInvoker
from services.inference.settings import Settings


def registry(invoker: ServiceInvoker, settings: Settings) -> RegistryClient:
    return RegistryClient(invoker, settings.registry_app_id)

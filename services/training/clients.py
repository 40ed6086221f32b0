"""The services training calls, through the invocation port: ingestion for a version's
manifest and rows, the registry for champions, registration and promotion."""

from dataclasses import dataclass

from services.common.clients import IngestionClient, RegistryClient
from services.common.ports import ServiceInvoker
from services.training.settings import Settings


@dataclass(frozen=True)
class Clients:
    ingestion: IngestionClient
    registry: RegistryClient

    @classmethod
    def over(cls, invoker: ServiceInvoker, settings: Settings) -> "Clients":
        return cls(
            IngestionClient(invoker, settings.ingestion_app_id), RegistryClient(invoker, settings.registry_app_id)
        )

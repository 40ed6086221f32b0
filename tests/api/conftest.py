import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app as gateway_app
from services.gateway.ports import GatewayPorts
from services.inference.app import InferencePorts
from services.inference.app import create_app as inference_app
from services.ingestion.app import IngestionPorts
from services.ingestion.app import create_app as ingestion_app
from services.registry.app import RegistryPorts
from services.registry.app import create_app as registry_app
from services.training.app import TrainingPorts
from services.training.app import create_app as training_app
from tests.fakes import fake_ports

# service -> (create_app, the ports it declares)
FACTORIES = {
    "ingestion": (ingestion_app, IngestionPorts),
    "training": (training_app, TrainingPorts),
    "registry": (registry_app, RegistryPorts),
    "inference": (inference_app, InferencePorts),
    "gateway": (gateway_app, GatewayPorts),
}


@pytest.fixture
def make_client():
    """A TestClient for a service, with in-memory fakes of our own ports."""
    clients = []

    def make(service: str, **ports):
        create_app, kind = FACTORIES[service]
        built = fake_ports(kind, **ports)
        client = TestClient(create_app(ports=built))
        client.ports = built
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

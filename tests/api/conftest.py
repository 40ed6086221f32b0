import pytest
from fastapi.testclient import TestClient

from tests.fakes import fake_ports
from services.gateway.app import create_app as gateway_app
from services.inference.app import create_app as inference_app
from services.ingestion.app import create_app as ingestion_app
from services.registry.app import create_app as registry_app
from services.training.app import create_app as training_app

FACTORIES = {
    "ingestion": ingestion_app,
    "training": training_app,
    "registry": registry_app,
    "inference": inference_app,
    "gateway": gateway_app,
}


@pytest.fixture
def make_client():
    """A TestClient for a service, with in-memory fakes of our own ports."""
    clients = []

    def make(service: str, **ports):
        built = fake_ports(**ports)
        client = TestClient(FACTORIES[service](ports=built))
        client.ports = built
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()

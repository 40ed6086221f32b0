import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app as gateway_app
from services.gateway.keys import Role, issue
from services.gateway.ports import GatewayPorts
from services.inference.app import create_app as inference_app
from services.inference.ports import InferencePorts
from services.ingestion.app import IngestionPorts
from services.ingestion.app import create_app as ingestion_app
from services.monitor.app import MonitorPorts
from services.monitor.app import create_app as monitor_app
from services.registry.app import RegistryPorts
from services.registry.app import create_app as registry_app
from services.training.app import TrainingPorts
from services.training.app import create_app as training_app
from tests.fakes import FakeSecretStore, fake_ports
from tests.unit.inference.models import FLOWER_FEATURES, HOUSE_FEATURES, Registry, flower_model, house_model

# service -> (create_app, the ports it declares)
FACTORIES = {
    "ingestion": (ingestion_app, IngestionPorts),
    "training": (training_app, TrainingPorts),
    "registry": (registry_app, RegistryPorts),
    "inference": (inference_app, InferencePorts),
    "monitor": (monitor_app, MonitorPorts),
    "gateway": (gateway_app, GatewayPorts),
}


def provisioned(**roles: list[Role]) -> tuple[dict[str, str], FakeSecretStore]:
    """Keys made as setup makes them (hashed, in the secret store), by name: their plain keys
    and the secret store holding them."""
    keys, entries = {}, {}
    for name, granted in roles.items():
        key, record = issue(name, granted)
        keys[name] = key
        entries[record.id] = record.model_dump_json(include={"name", "roles", "salt", "hash"})
    return keys, FakeSecretStore({"api-keys": entries})


@pytest.fixture
def make_client():
    """A TestClient for a service, with in-memory fakes of our own ports. The gateway's has an
    admin key provisioned and sends it (client.key) unless its secrets are given."""
    clients = []

    def make(service: str, **ports):
        create_app, kind = FACTORIES[service]
        key = None
        if service == "gateway" and "secrets" not in ports:
            keys, ports["secrets"] = provisioned(admin=[Role.ADMIN])
            key = keys["admin"]
        built = fake_ports(kind, **ports)
        client = TestClient(create_app(ports=built))
        client.ports, client.key = built, key
        if key:
            client.headers["authorization"] = f"Bearer {key}"
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def served(make_client):
    """The inference app over a fake registry serving two real models as champions: 'flowers'
    (a classifier with a category feature) and 'houses' (a regressor)."""
    registry, flowers, houses = Registry(), flower_model(), house_model()
    registry.add("flowers", 1, flowers, FLOWER_FEATURES, aliases=("champion",))
    registry.add("houses", 1, houses, HOUSE_FEATURES, aliases=("champion",))
    client = make_client("inference", invoker=registry.invoker)
    client.registry, client.flowers, client.houses = registry, flowers, houses
    return client

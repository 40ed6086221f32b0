"""What a client reads when something behind a service fails: what failed, in words it can act
on; never a sidecar address, a component name or a store's own error text (those go to the log)."""

from fastapi.testclient import TestClient

from services.common.ports import SidecarUnavailable
from services.ingestion.app import IngestionPorts, create_app
from tests.fakes import FakeStateStore, fake_ports

INTERNALS = ("127.0.0.1", "3511", "statestore", "dataset:", "ERR ", "Traceback")


class BrokenStateStore(FakeStateStore):
    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    async def get(self, key):
        raise self.error


def test_an_unavailable_state_store_is_a_503_that_says_which_and_to_retry(make_client, caplog):
    down = SidecarUnavailable(
        "reading 'dataset:iris' from statestore: dial tcp 127.0.0.1:3511: connection refused",
        "the state store is unavailable",
    )
    client = make_client("ingestion", state=BrokenStateStore(down))
    reply = client.get("/api/datasets/iris")
    assert reply.status_code == 503 and reply.headers["retry-after"] == "5"
    assert reply.json() == {"detail": "the state store is unavailable; try again in a few seconds"}
    assert "connection refused" in caplog.text, "the details belong in the log"


def test_an_unexpected_failure_is_a_500_naming_the_service_and_nothing_inside(caplog):
    broken = BrokenStateStore(KeyError("dataset:iris in statestore at 127.0.0.1"))
    # As a server would: the exception is answered, not raised into the test.
    app = create_app(ports=fake_ports(IngestionPorts, state=broken))
    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.get("/api/datasets/iris")
    assert reply.status_code == 500
    assert reply.json() == {"detail": "ingestion failed to handle this request; its log has the details"}
    assert not any(word in reply.text for word in INTERNALS)
    assert "KeyError" in caplog.text


def test_the_sidecars_own_status_page_is_not_needed_for_a_client_error(make_client):
    reply = make_client("ingestion").get("/api/datasets/NOT-A-NAME")
    assert reply.status_code == 422 and not any(word in reply.text for word in INTERNALS)

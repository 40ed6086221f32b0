"""A route receives any of its service's objects (ServiceSpec.services) by type, through an
alias made with depends_on."""

from typing import Annotated

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from services.common.app import ServiceSpec, build_app
from services.common.deps import depends_on
from services.common.ports import SidecarPorts
from services.common.settings import ServiceSettings
from tests.fakes import fake_ports


class Plane:
    name = "plane"


class Log:
    name = "log"


PlaneDep = Annotated[Plane, depends_on(Plane)]
LogDep = Annotated[Log, depends_on(Log)]
router = APIRouter()


@router.get("/both")
async def both(plane: PlaneDep, log: LogDep) -> list[str]:
    return [plane.name, log.name]


def client(services: dict[type, object]) -> TestClient:
    spec = ServiceSpec(
        title="t",
        settings=ServiceSettings(heartbeat_s=0),
        ports=fake_ports(SidecarPorts),
        routers=[router],
        services=services,
    )
    return TestClient(build_app(spec), raise_server_exceptions=True)


def test_each_service_object_reaches_the_route_by_its_type():
    assert client({Plane: Plane(), Log: Log()}).get("/both").json() == ["plane", "log"]


def test_a_type_the_spec_does_not_hold_is_a_wiring_mistake_named_plainly():
    with pytest.raises(LookupError, match="holds no Log"):
        client({Plane: Plane()}).get("/both")

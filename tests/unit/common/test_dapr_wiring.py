"""sidecar_ports makes the adapters a service's ports class declares, all over one sidecar, and
refuses a port it has no adapter for; the probe reads the sidecar's metadata (no sidecar: an
httpx transport answers)."""

import asyncio
from dataclasses import dataclass

import httpx
import pytest

from services.common.dapr_adapters import (
    DaprBlobStore,
    DaprInvoker,
    DaprProbe,
    DaprPublisher,
    DaprStateStore,
    DaprWorkflows,
    Sidecar,
    sidecar_ports,
)
from services.common.ports import BlobStore, EventPublisher, ServiceInvoker, SidecarPorts, StateStore, Workflows
from services.common.settings import ServiceSettings


@dataclass(kw_only=True)
class SomePorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore
    publisher: EventPublisher
    invoker: ServiceInvoker
    workflows: Workflows


@dataclass(kw_only=True)
class UnknownPorts(SidecarPorts):
    mailbox: object


def test_each_declared_port_gets_its_adapter_over_one_sidecar():
    ports = sidecar_ports(SomePorts, ServiceSettings(app_id="someapp", statestore="docs", blobstore="files"))
    made = (ports.probe, ports.state, ports.blobs, ports.publisher, ports.invoker, ports.workflows)
    kinds = (DaprProbe, DaprStateStore, DaprBlobStore, DaprPublisher, DaprInvoker, DaprWorkflows)
    assert all(isinstance(port, kind) for port, kind in zip(made, kinds, strict=True))
    assert len({id(port.sidecar) for port in made}) == 1
    assert (ports.state.store, ports.blobs.binding, ports.publisher.source) == ("docs", "files", "/daprml/someapp")
    asyncio.run(ports.close())


def test_a_port_without_an_adapter_is_refused_by_name():
    with pytest.raises(TypeError, match=r"UnknownPorts declares ports the Dapr adapters do not provide: \['mailbox'\]"):
        sidecar_ports(UnknownPorts, ServiceSettings())


def test_the_probe_reads_the_sidecars_metadata():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1.0/metadata"
        return httpx.Response(
            200, json={"id": "someapp", "runtimeVersion": "1.16.0", "components": [{"name": "statestore"}]}
        )

    sidecar = Sidecar(ServiceSettings(dapr_http_port=3599))
    sidecar.http = httpx.AsyncClient(base_url=sidecar.http_url, transport=httpx.MockTransport(answer))
    info = asyncio.run(DaprProbe(sidecar).info())
    assert (info.app_id, info.runtime_version, info.components) == ("someapp", "1.16.0", [{"name": "statestore"}])

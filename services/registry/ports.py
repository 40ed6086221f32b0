"""The sidecar building blocks the registry uses: state (model records, version details),
blobs (artifacts) and pub/sub (its events). Tests hand in fakes of them."""

from dataclasses import dataclass

from services.common.ports import BlobStore, EventPublisher, SidecarPorts, StateStore


@dataclass(kw_only=True)
class RegistryPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore
    publisher: EventPublisher

"""The sidecar building blocks ingestion uses: state (dataset records, upload sessions,
manifests), blobs (the rows) and pub/sub (version events). Tests hand in fakes of them."""

from dataclasses import dataclass

from services.common.ports import BlobStore, EventPublisher, SidecarPorts, StateStore


@dataclass(kw_only=True)
class IngestionPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore
    publisher: EventPublisher

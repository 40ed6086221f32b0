"""The sidecar building blocks the monitor uses: blobs (the inference tables' Parquet parts) and
state (the index of those parts). Tests hand in fakes of them."""

from dataclasses import dataclass

from services.common.ports import BlobStore, SidecarPorts, StateStore


@dataclass(kw_only=True)
class MonitorPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore

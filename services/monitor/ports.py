"""The sidecar building blocks the monitor uses: blobs (the inference tables' Parquet parts) and
state (the index of those parts, monitoring policies and reports); for drift checks, the
registry (invoker), the scheduler (jobs) and pub/sub (publisher). Tests hand in fakes of them."""

from dataclasses import dataclass

from services.common.ports import BlobStore, EventPublisher, Jobs, ServiceInvoker, SidecarPorts, StateStore


@dataclass(kw_only=True)
class MonitorPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore
    invoker: ServiceInvoker
    jobs: Jobs
    publisher: EventPublisher

"""The sidecar building blocks the registry uses: state (model records, version details),
blobs (artifacts), pub/sub (its events), workflows (rollouts) and service invocation (the
monitor's evidence for a rollout's gates). Tests hand in fakes of them."""

from dataclasses import dataclass

from services.common.ports import BlobStore, EventPublisher, ServiceInvoker, SidecarPorts, StateStore, Workflows


@dataclass(kw_only=True)
class RegistryPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore
    publisher: EventPublisher
    workflows: Workflows
    invoker: ServiceInvoker

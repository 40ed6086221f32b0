from dataclasses import dataclass

from services.common.ports import BlobStore, ServiceInvoker, SidecarPorts, StateStore, Workflows


@dataclass(kw_only=True)
class TrainingPorts(SidecarPorts):
    state: StateStore
    blobs: BlobStore
    invoker: ServiceInvoker
    workflows: Workflows

"""The one package that imports the Dapr SDK: each port of services.common.ports over a sidecar,
one module per building block.

State, pub/sub, bindings and secrets go through the SDK's gRPC client (sidecar.Sidecar holds it).
Service invocation, health and metadata use the sidecar's HTTP API, which keeps the callee's
status code and content type intact. Apps choose Dapr in their app.py with sidecar_ports; the kit
declares their subscriptions with declare_subscriptions.
"""

from services.common.dapr_adapters.blobs import DaprBlobStore
from services.common.dapr_adapters.invoke import DaprInvoker, UnsafePath, invoke_path
from services.common.dapr_adapters.jobs import DaprJobs, declare_jobs, job_name
from services.common.dapr_adapters.probe import DaprProbe
from services.common.dapr_adapters.pubsub import DaprPublisher, count_published
from services.common.dapr_adapters.secrets import DaprSecretStore
from services.common.dapr_adapters.sidecar import Sidecar
from services.common.dapr_adapters.state import DaprStateStore
from services.common.dapr_adapters.subscriptions import (
    DEAD_LETTER_ROUTE,
    DeadLetterHandler,
    declare_subscriptions,
    deliver,
)
from services.common.dapr_adapters.wiring import sidecar_ports
from services.common.dapr_adapters.workflows import DaprWorkflows

__all__ = [
    "DEAD_LETTER_ROUTE",
    "DaprBlobStore",
    "DaprInvoker",
    "DaprJobs",
    "DaprProbe",
    "DaprPublisher",
    "DaprSecretStore",
    "DaprStateStore",
    "DaprWorkflows",
    "DeadLetterHandler",
    "Sidecar",
    "UnsafePath",
    "count_published",
    "declare_jobs",
    "declare_subscriptions",
    "deliver",
    "invoke_path",
    "job_name",
    "sidecar_ports",
]

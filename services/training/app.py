from functools import partial

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters, roundtrip
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.events import EventType
from services.training import api
from services.training.activities import Activities
from services.training.clients import Clients
from services.training.compute import Compute
from services.training.metrics import TrainingMetrics
from services.training.ports import TrainingPorts
from services.training.service import JobService
from services.training.settings import Settings
from services.training.workflow import WORKFLOW, train_model


def create_app(settings: Settings | None = None, ports: TrainingPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(TrainingPorts, settings)
    compute = Compute(settings.fit_workers, settings.fit_memory_mb)
    registry = CollectorRegistry()
    metrics = TrainingMetrics(registry)
    metrics.watch(compute.queued, compute.running)
    clients = Clients.over(ports.invoker, settings)
    activities = Activities(ports.blobs, clients, compute, settings, ports.workflows, ports.state)
    ports.workflows.define(WORKFLOW, metrics.counting(train_model), metrics.timed(activities.table()))
    jobs = JobService(ports.state, clients.ingestion, ports.workflows, settings, stop=compute.cancel, metrics=metrics)

    return build_app(
        ServiceSpec(
            title="daprml training",
            settings=settings,
            ports=ports,
            services={JobService: jobs},
            routers=[api.router, roundtrip.receiver],
            subscriptions={
                EventType.ROUNDTRIP_PING: partial(
                    roundtrip.receive, app_id=settings.app_id, state=ports.state, blobs=ports.blobs
                ),
                EventType.DATASET_VERSION_COMMITTED: jobs.on_version_committed,
            },
            # Interrupted jobs resume as soon as the engine has the workflow again.
            background=[
                Periodic("workflow engine", 2.0, ports.workflows.start, until_done=True),
                # Each slot gets a worker process at start-up; one that died is replaced.
                Periodic("fit workers", 5.0, compute.refill),
            ],
            closing=[compute.close],
            # Not live while no fit worker can start: a restart may help, nothing else would.
            liveness=[compute.problem],
            metrics=registry,
        )
    )

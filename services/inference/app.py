from dataclasses import dataclass

from fastapi import FastAPI

from services.common import dapr_adapters
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.events import EventType
from services.common.ports import EventPublisher, ServiceInvoker, SidecarPorts
from services.inference import api, v2
from services.inference.batching import Limits
from services.inference.dataplane import DataPlane
from services.inference.prediction_log import PredictionLog
from services.inference.settings import Settings


@dataclass(kw_only=True)
class InferencePorts(SidecarPorts):
    invoker: ServiceInvoker  # the registry: model versions and their files
    publisher: EventPublisher  # the prediction log's events


def create_app(settings: Settings | None = None, ports: InferencePorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(InferencePorts, settings)
    batching = Limits(settings.max_batch_size, settings.max_batch_wait_s) if settings.batching else None
    plane = DataPlane(
        ports.invoker,
        settings.registry_app_id,
        settings.max_loaded_models,
        batching=batching,
        unbatched=set(settings.unbatched_models),
    )
    prediction_log = PredictionLog(
        ports.publisher,
        settings.prediction_log_rate,
        settings.prediction_log_buffer,
        settings.prediction_log_flush_s,
        settings.prediction_log_batch,
    )
    # run() paces itself and returns only when cancelled; Periodic restarts it should it fail.
    flushing = Periodic("prediction log", settings.prediction_log_flush_s, prediction_log.run)
    app = build_app(
        ServiceSpec(
            title="daprml inference",
            settings=settings,
            ports=ports,
            service=plane,
            routers=[api.router, api.stats, v2.router],
            every_replica={EventType.MODEL_ALIAS_CHANGED: plane.on_alias_changed},
            background=[
                Periodic("reconcile with the registry", settings.reconcile_interval_s, plane.reconcile),
                *([flushing] if settings.prediction_log_rate > 0 else []),
            ],
            closing=[plane.close, prediction_log.close],
        )
    )
    app.state.prediction_log = prediction_log
    return app

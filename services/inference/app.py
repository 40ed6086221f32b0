from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters, middleware
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.events import EventType
from services.inference import api, clients, v2_api
from services.inference.batching import Limits
from services.inference.dataplane import DataPlane
from services.inference.metrics import InferenceMetrics
from services.inference.ports import InferencePorts
from services.inference.prediction_log import PredictionLog
from services.inference.runtimes import Compiling
from services.inference.serving_stats import ServingTally
from services.inference.settings import Settings
from services.inference.shadows import Shadows


def create_app(settings: Settings | None = None, ports: InferencePorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(InferencePorts, settings)
    batching = Limits(settings.max_batch_size, settings.max_batch_wait_s) if settings.batching else None
    registry = CollectorRegistry()
    metrics = InferenceMetrics(registry)
    serving = ServingTally(ports.publisher, settings.dapr_http_port)
    shadows = Shadows(metrics, settings.shadow_max_pending, settings.shadow_timeout_s, serving=serving)
    plane = DataPlane(
        clients.registry(ports.invoker, settings),
        settings.max_loaded_models,
        batching=batching,
        unbatched=set(settings.unbatched_models),
        compiling=Compiling(
            settings.compiled, frozenset(settings.uncompiled_models), settings.onnx_threads, settings.inline_rows
        ),
        metrics=metrics,
        shadows=shadows,
        serving=serving,
    )
    prediction_log = PredictionLog(
        ports.publisher,
        settings.prediction_log_rate,
        settings.prediction_log_buffer,
        settings.prediction_log_flush_s,
        settings.prediction_log_batch,
        rates=settings.prediction_log_rates,
        max_rows=settings.prediction_log_max_rows,
        buffer_rows=settings.prediction_log_buffer_rows,
        metrics=metrics,
    )
    # A shadow's answers are captured as the caller's are, under the request's id.
    shadows.capture = lambda out, ms: prediction_log.record(out, middleware.request_id.get(), ms)
    # run() paces itself and returns only when cancelled; Periodic restarts it should it fail.
    flushing = Periodic("prediction log", settings.prediction_log_flush_s, prediction_log.run)
    return build_app(
        ServiceSpec(
            title="daprml inference",
            settings=settings,
            ports=ports,
            services={DataPlane: plane, PredictionLog: prediction_log},
            routers=[api.router, api.stats, v2_api.router],
            every_replica={
                EventType.MODEL_ALIAS_CHANGED: plane.on_alias_changed,
                EventType.MODEL_TRAFFIC_CHANGED: plane.traffic.on_traffic_changed,
            },
            background=[
                Periodic("reconcile with the registry", settings.reconcile_interval_s, plane.reconcile),
                *([flushing] if prediction_log.sampling else []),
                # Each replica's counters for the monitor, which sums them (the rollouts' evidence).
                *(
                    [Periodic("serving stats", settings.serving_stats_s, serving.send)]
                    if settings.serving_stats_s
                    else []
                ),
            ],
            closing=[plane.close, prediction_log.close],
            metrics=registry,
        )
    )

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters
from services.common.app import Periodic, ServiceSpec, build_app
from services.common.clients import IngestionClient, RegistryClient, TrainingClient
from services.common.events import EventType
from services.common.state import Documents
from services.monitor.api import public
from services.monitor.capture import Capture, CaptureLimits
from services.monitor.domain.record import MonitoringRecord
from services.monitor.domain.reports import VersionReport
from services.monitor.domain.serving import ServingDocument
from services.monitor.evidence import EvidenceService
from services.monitor.evidence_api import internal as evidence_router
from services.monitor.feedback import FeedbackService, feedback_table
from services.monitor.feedback_api import router as feedback_router
from services.monitor.live import LiveLimits, LiveTracker
from services.monitor.metrics import MonitorMetrics
from services.monitor.monitoring import JOB_KIND, Monitoring, Names
from services.monitor.monitoring_api import router as monitoring_router
from services.monitor.ports import MonitorPorts  # also imported from here by tests/api/conftest.py
from services.monitor.retention import JOB_KIND as RETENTION_JOB_KIND
from services.monitor.retention import Retention, RetentionLimits
from services.monitor.retrain import Retrainer, RetrainLimits, truths_of
from services.monitor.service import MonitorService
from services.monitor.serving import ServingKeeper
from services.monitor.settings import Settings
from services.monitor.tables import InferenceTables


def create_app(settings: Settings | None = None, ports: MonitorPorts | None = None) -> FastAPI:
    """The app; tests hand in fake ports, production builds them over the sidecar."""
    settings = settings or Settings()
    ports = ports or dapr_adapters.sidecar_ports(MonitorPorts, settings)
    registry = CollectorRegistry()
    metrics = MonitorMetrics(registry)
    tables = InferenceTables(ports.state, ports.blobs, settings.index_segment_parts, settings.page_max_parts, metrics)
    limits = CaptureLimits(
        max_rows=settings.capture_max_rows,
        max_events=settings.capture_max_events,
        max_wait_s=settings.capture_max_wait_s,
        max_held_rows=settings.capture_max_held_rows,
    )
    capture = Capture(tables, limits, metrics)
    service = MonitorService(capture, tables, metrics)
    live = LiveTracker(
        tables.table,
        feedback_table(ports.state, ports.blobs, settings.index_segment_parts, metrics),
        LiveLimits(
            retention_days=settings.feedback_retention_days,
            window_pairs=settings.live_window_pairs,
            window_hours=settings.live_window_hours,
            max_rows=settings.live_max_rows,
            max_models=settings.live_max_models,
            cache_s=settings.live_cache_s,
            refresh_s=settings.live_refresh_s,
        ),
        metrics,
    )
    feedback = FeedbackService(live.feedback, live, settings.feedback_max_items, metrics)
    registry_client = RegistryClient(ports.invoker, settings.registry_app_id)
    retrainer = Retrainer(
        registry_client,
        IngestionClient(ports.invoker, settings.ingestion_app_id),
        TrainingClient(ports.invoker, settings.training_app_id),
        tables,
        truths_of(live),
        RetrainLimits(
            max_rows=settings.retrain_max_rows,
            max_captured=settings.retrain_max_captured,
            max_parts=settings.check_max_parts,
            part_bytes=settings.retrain_part_bytes,
        ),
    )
    monitoring = Monitoring(
        Documents(ports.state, MonitoringRecord),
        Documents(ports.state, VersionReport),
        Documents(ports.state, Names),
        tables,
        registry_client,
        ports.jobs,
        ports.publisher,
        metrics,
        app_id=settings.app_id,
        timeout_s=settings.check_timeout_s,
        max_parts=settings.check_max_parts,
        live=live.report,
        retrainer=retrainer,
        shadow_cache_s=settings.live_cache_s,
    )
    retention = Retention(
        [tables.table, tables.shadows, live.feedback],
        ports.jobs,
        RetentionLimits(
            days=settings.retention_days, schedule=settings.retention_schedule, max_parts=settings.retention_max_parts
        ),
        metrics,
    )
    serving = ServingKeeper(
        Documents(ports.state, ServingDocument), settings.serving_forget_h, settings.serving_max_instances
    )
    evidence = EvidenceService(
        serving,
        tables,
        live,
        max_rows=settings.evidence_max_rows,
        max_parts=settings.check_max_parts,
        cache_s=settings.live_cache_s,
        clock=live.clock,
    )
    return build_app(
        ServiceSpec(
            title="daprml monitor",
            settings=settings,
            ports=ports,
            services={
                MonitorService: service,
                FeedbackService: feedback,
                LiveTracker: live,
                Monitoring: monitoring,
                EvidenceService: evidence,
            },
            routers=[public, feedback_router, monitoring_router, evidence_router],
            subscriptions={
                EventType.PREDICTION_LOGGED: service.on_prediction_logged,
                EventType.INFERENCE_SERVING_STATS: serving.on_serving_stats,
            },
            metrics=registry,
            background=[
                Periodic("live-metrics", settings.live_cache_s, live.refresh_held),
                Periodic("monitoring outbox", settings.monitoring_outbox_s, monitoring.flush_all),
                # Every replica schedules the retention job (the same name: one job, fired on one replica).
                Periodic("retention job", 5.0, retention.schedule, until_done=True),
            ],
            jobs={JOB_KIND: monitoring.on_job, RETENTION_JOB_KIND: retention.on_job},
            closing=[capture.close],
        )
    )

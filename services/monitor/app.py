from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.common import dapr_adapters
from services.common.app import ServiceSpec, build_app
from services.common.events import EventType
from services.monitor.api import public
from services.monitor.capture import Capture, CaptureLimits
from services.monitor.metrics import MonitorMetrics
from services.monitor.ports import MonitorPorts  # also imported from here by tests/api/conftest.py
from services.monitor.service import MonitorService
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
    return build_app(
        ServiceSpec(
            title="daprml monitor",
            settings=settings,
            ports=ports,
            services={MonitorService: service},
            routers=[public],
            subscriptions={EventType.PREDICTION_LOGGED: service.on_prediction_logged},
            metrics=registry,
            closing=[capture.close],
        )
    )

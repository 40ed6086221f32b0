"""Ingestion's use cases, none of which knows HTTP or Dapr: uploads (sessions taking parts),
commit (parts to a version, and its event), reads (datasets, versions, rows, downloads), over
the upload sessions they share; facade.IngestionService is the one object the routes call."""

from services.ingestion.service.facade import IngestionService

__all__ = ["IngestionService"]

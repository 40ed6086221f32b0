"""Ingestion's domain, pure (no I/O, no Dapr): schemas, parsing, validation, profiles, row
fingerprints, the life of an upload (uploads.py), the making of a version (versions.py), and
what the routes take and answer (views.py)."""

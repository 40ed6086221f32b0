"""Ingestion's domain: schemas, parsing, validation, profiles. Pure: no I/O, no Dapr."""

"""Ingestion: validates datasets and stores immutable dataset versions."""

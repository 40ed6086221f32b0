"""Inference: serves models (Open Inference Protocol v2 and a JSON API)."""

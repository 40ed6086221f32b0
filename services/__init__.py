"""daprml services: each one a FastAPI app behind its own Dapr sidecar."""

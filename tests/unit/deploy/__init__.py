"""Checks of the deployment files that cannot run here: docker-compose.yml, deploy/k8s, the resiliency policy."""

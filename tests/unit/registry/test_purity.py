"""The registry's domain is pure, like ingestion's (the import contract in pyproject.toml
names only ingestion's): no web framework, HTTP client, Dapr or ports."""

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[3] / "services" / "registry" / "domain"
FORBIDDEN = ("fastapi", "starlette", "httpx", "dapr", "grpc", "services.common.ports", "services.common.dapr_adapters")


def test_the_registry_domain_imports_no_framework_client_or_port():
    imported = set()
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {(path.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
    assert imported and [i for i in imported if i[1].startswith(FORBIDDEN)] == []

"""API keys: their format and roles (domain.py, pure), the key ring that knows which exist
(service.py), and the admins' routes to issue, list and revoke them (api.py).

The words other code needs (scripts/credentials.py makes the development admin key, the tests
make keys of every role) are named here, so that they need not know the package's layout.
"""

from services.gateway.keys.domain import KeyRecord, Role, issue, parse

__all__ = ["KeyRecord", "Role", "issue", "parse"]

"""Rules of the code base that a reviewer would otherwise have to remember."""

import ast
import re
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
ADAPTERS = SERVICES / "common" / "dapr_adapters.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_adapters_module_imports_the_dapr_sdk():
    importers = {
        p.relative_to(SERVICES).as_posix()
        for p in SERVICES.rglob("*.py")
        if any(n == "dapr" or n.startswith("dapr.") for n in _imports(p))
    }
    assert importers == {"common/dapr_adapters.py"}


def test_component_names_are_not_literals_outside_settings():
    literal = re.compile(r"""["'](statestore|pubsub|secretstore|blobstore)["']""")
    offenders = [
        p.relative_to(SERVICES).as_posix()
        for p in SERVICES.rglob("*.py")
        if p.name != "settings.py" and literal.search(p.read_text())
    ]
    assert offenders == []


def test_topic_names_and_event_types_live_only_in_the_events_module():
    literal = re.compile(r"""["'](dataset-versions|roundtrip|io\.daprml\.[a-z.]+v\d)["']""")
    offenders = [
        p.relative_to(SERVICES).as_posix()
        for p in SERVICES.rglob("*.py")
        if p.name != "events.py" and literal.search(p.read_text())
    ]
    assert offenders == []


def test_only_app_wiring_imports_the_dapr_adapter():
    """Use cases, routes and domain code see the ports; choosing Dapr happens where an app is built."""
    importers = {
        p.relative_to(SERVICES).as_posix()
        for p in SERVICES.rglob("*.py")
        if any(n == "services.common.dapr_adapters" or n.endswith("dapr_adapters") for n in _imports(p))
        or "dapr_adapters" in {a for a in _from_common(p)}
    }
    assert importers and all(path.endswith("/app.py") for path in importers), importers


def _from_common(path: Path) -> set[str]:
    """Names imported by `from services.common import ...`."""
    tree = ast.parse(path.read_text())
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "services.common"
        for alias in node.names
    }

"""Rules of the code base that a reviewer would otherwise have to remember: where Dapr is
imported, and the service template of docs/architecture.md (app.py builds a ServiceSpec, ports
in ports.py, routes in api modules receiving service objects through deps.py, a pure domain)."""

import ast
import importlib
import inspect
import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import pytest
from fastapi.params import Depends
from fastapi.routing import APIRoute, APIRouter

from services.common.ports import SidecarPorts

SERVICES = Path(__file__).resolve().parents[2] / "services"
ADAPTERS = SERVICES / "common" / "dapr_adapters"
TEMPLATED = ("gateway", "ingestion", "training", "registry", "inference", "monitor")
"""The Python services built on the kit: each follows the template."""

ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route", "websocket"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _from_common(path: Path) -> set[str]:
    """Names imported by `from services.common import ...`."""
    return {
        alias.name
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and node.module == "services.common"
        for alias in node.names
    }


def _modules(service: str) -> list[Path]:
    return sorted(p for p in (SERVICES / service).rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(SERVICES).as_posix()


def _name(node: ast.expr) -> str:
    """The last name of `X` or `a.b.X` (what a base class or a called function is called)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


# -- Dapr ----------------------------------------------------------------------------------


def test_only_the_adapter_package_imports_the_dapr_sdk():
    importers = {
        _rel(p) for p in SERVICES.rglob("*.py") if any(n == "dapr" or n.startswith("dapr.") for n in _imports(p))
    }
    assert importers and all(path.startswith("common/dapr_adapters/") for path in importers), importers


def test_only_app_wiring_imports_the_dapr_adapter():
    """Use cases, routes and domain code see the ports; choosing Dapr happens where an app is built."""
    importers = {
        _rel(p)
        for p in SERVICES.rglob("*.py")
        if ADAPTERS not in p.parents
        and (
            any(n.startswith("services.common.dapr_adapters") for n in _imports(p))
            or "dapr_adapters" in _from_common(p)
        )
    }
    assert importers and all(path.endswith("/app.py") for path in importers), importers


def test_component_names_are_not_literals_outside_settings():
    literal = re.compile(r"""["'](statestore|pubsub|secretstore|blobstore)["']""")
    offenders = [_rel(p) for p in SERVICES.rglob("*.py") if p.name != "settings.py" and literal.search(p.read_text())]
    assert offenders == []


def test_topic_names_and_event_types_live_only_in_the_events_module():
    literal = re.compile(r"""["'](dataset-versions|roundtrip|io\.daprml\.[a-z.]+v\d)["']""")
    offenders = [_rel(p) for p in SERVICES.rglob("*.py") if p.name != "events.py" and literal.search(p.read_text())]
    assert offenders == []


# -- The service template --------------------------------------------------------------------


@pytest.mark.parametrize("service", TEMPLATED)
def test_app_py_builds_the_service_from_a_service_spec(service):
    app = SERVICES / service / "app.py"
    assert app.exists(), f"{service} has no app.py"
    calls = {_name(node.func) for node in ast.walk(_tree(app)) if isinstance(node, ast.Call)}
    assert "ServiceSpec" in calls, f"{service}/app.py builds no ServiceSpec"


def _ports_classes() -> set[str]:
    """SidecarPorts and every class of services/ derived from it, by name (to any depth)."""
    classes = [
        (node.name, {_name(base) for base in node.bases})
        for path in SERVICES.rglob("*.py")
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ClassDef)
    ]
    found = {"SidecarPorts"}
    while True:
        more = {name for name, bases in classes if bases & found} - found
        if not more:
            return found
        found |= more


@pytest.mark.parametrize("service", TEMPLATED)
def test_the_ports_a_service_declares_are_in_its_ports_py(service):
    ports = _ports_classes()
    declared = {
        (_rel(path), node.name)
        for path in _modules(service)
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ClassDef) and {_name(base) for base in node.bases} & ports
    }
    assert declared, f"{service} declares no SidecarPorts subclass"
    assert {path for path, _ in declared} == {f"{service}/ports.py"}, sorted(declared)


def _is_api_module(path: Path, service: str) -> bool:
    """api.py at any depth, a module named like *_api.py or api_*.py, or any module of an api/ package."""
    relative = path.relative_to(SERVICES / service)
    stem = path.stem
    return stem == "api" or stem.endswith("_api") or stem.startswith("api_") or "api" in relative.parts[:-1]


def _defines_routes(path: Path) -> bool:
    """Whether a module makes a router or adds a route to one."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and _name(node.func) in ("APIRouter", "add_api_route"):
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                called = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(called, ast.Attribute) and called.attr in ROUTE_DECORATORS:
                    return True
    return False


@pytest.mark.parametrize("service", TEMPLATED)
def test_routes_live_in_api_modules(service):
    offenders = [_rel(p) for p in _modules(service) if _defines_routes(p) and not _is_api_module(p, service)]
    assert offenders == [], f"routes outside an api module (api.py, *_api.py or an api/ package): {offenders}"


def _receives_the_ports_bag(annotation: Any, default: Any) -> bool:
    hint, extras = annotation, []
    if get_origin(annotation) is Annotated:
        hint, *extras = get_args(annotation)
    depends = [d for d in (*extras, default) if isinstance(d, Depends)]
    # A dependency that hands over the ports, whatever the route's own hint says.
    given = [inspect.signature(d.dependency).return_annotation for d in depends if d.dependency]
    return any(inspect.isclass(h) and issubclass(h, SidecarPorts) for h in (hint, *given))


def _routes(service: str) -> list[tuple[str, APIRoute]]:
    """The routes of every module of the service that makes them, with where each is defined."""
    found = []
    for path in _modules(service):
        if not _defines_routes(path):
            continue
        module = importlib.import_module(".".join(path.relative_to(SERVICES.parent).with_suffix("").parts))
        for value in vars(module).values():
            if isinstance(value, APIRouter):
                found += [(_rel(path), route) for route in value.routes if isinstance(route, APIRoute)]
    return found


@pytest.mark.parametrize("service", TEMPLATED)
def test_no_route_receives_the_ports_bag(service):
    """A route receives the service objects it uses (deps.py aliases), never the whole bag of
    ports: what it may touch stays visible in its signature and in the use cases."""
    routes = _routes(service)
    assert routes, f"found no route of {service}"
    offenders = []
    for where, route in routes:
        for parameter in inspect.signature(route.endpoint, eval_str=True).parameters.values():
            if _receives_the_ports_bag(parameter.annotation, parameter.default):
                offenders.append(f"{where}: {route.endpoint.__name__}({parameter.name})")
    assert offenders == []


def _reads_app_state(path: Path) -> bool:
    """`request.app.state` (or `scope["app"].state`): what only a deps module may read."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Attribute) and node.attr == "state":
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr == "app":
                return True
            if isinstance(owner, ast.Subscript) and isinstance(owner.slice, ast.Constant):
                if owner.slice.value == "app":
                    return True
    return False


def test_only_deps_modules_read_the_apps_state():
    offenders = [
        _rel(p)
        for p in SERVICES.rglob("*.py")
        if SERVICES / "common" not in p.parents and p.name != "deps.py" and _reads_app_state(p)
    ]
    assert offenders == []


IMPURE = ("fastapi", "starlette", "httpx", "dapr", "grpc", "services.common.ports", "services.common.dapr_adapters")
IMPURE_KIT = ("services.common.app", "services.common.deps", "services.common.middleware")


@pytest.mark.parametrize("service", [s for s in TEMPLATED if (SERVICES / s / "domain").is_dir()])
def test_domain_code_is_pure(service):
    """No web framework, HTTP client, Dapr, ports or app kit, and nothing of its own service
    outside its domain: the domain is what a test exercises with plain values."""
    domain = SERVICES / service / "domain"
    own = f"services.{service}"
    offenders = sorted(
        (_rel(p), name)
        for p in domain.rglob("*.py")
        for name in _imports(p)
        if name.startswith((*IMPURE, *IMPURE_KIT))
        or (name.startswith(f"{own}.") and not name.startswith(f"{own}.domain"))
    )
    assert offenders == []

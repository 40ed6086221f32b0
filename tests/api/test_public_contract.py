"""The public API and the events do not change by accident. Every service's OpenAPI document
(the gateway's is the public one, the others are what services call each other with) and the
events' JSON schemas are compared with snapshots committed under tests/snapshots/. A change
on purpose regenerates them (`python -m tests.api.test_public_contract`) and says so in its
commit; a diff here otherwise means a client somewhere breaks."""

import json
import sys
from pathlib import Path

import pytest

from services.common import events

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
SERVICES = ("gateway", "ingestion", "training", "registry", "inference", "monitor")
EVENTS = SNAPSHOTS / "events.schema.json"


def openapi(service: str) -> dict:
    from tests.api.conftest import FACTORIES
    from tests.fakes import fake_ports

    create_app, ports = FACTORIES[service]
    # The document as /openapi.json serves it, without starting the app (training would start
    # its fit workers).
    document: dict = json.loads(json.dumps(create_app(ports=fake_ports(ports)).openapi()))
    return document


def snapshot(service: str) -> Path:
    return SNAPSHOTS / f"{service}.openapi.json"


def _diff(old: dict, new: dict, at: str = "") -> list[str]:
    """Where two JSON documents differ, as paths, so a failure names what changed."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in new:
                out.append(f"removed {at}/{key}")
            elif key not in old:
                out.append(f"added {at}/{key}")
            else:
                out += _diff(old[key], new[key], f"{at}/{key}")
        return out
    return [] if old == new else [f"changed {at}"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_openapi_document_matches_the_snapshot(service):
    changes = _diff(json.loads(snapshot(service).read_text()), openapi(service))
    assert changes == [], "the public API changed; if on purpose, regenerate the snapshot:\n" + "\n".join(changes)


def test_the_event_schemas_match_the_snapshot():
    changes = _diff(json.loads(EVENTS.read_text()), events.json_schemas())
    assert changes == [], "an event changed; if on purpose, regenerate the snapshot:\n" + "\n".join(changes)


def test_the_diff_names_what_changed():
    assert _diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 2}, "d": 0}) == ["changed /a/b", "removed /a/c", "added /d"]


def main() -> int:
    SNAPSHOTS.mkdir(exist_ok=True)
    for service in SERVICES:
        snapshot(service).write_text(json.dumps(openapi(service), indent=1, sort_keys=True) + "\n")
    EVENTS.write_text(json.dumps(events.json_schemas(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(SERVICES)} OpenAPI documents and {EVENTS.name} under {SNAPSHOTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

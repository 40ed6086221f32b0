"""daprml trace against the fake gateway: what it asks, and the waterfall it prints."""

import json

from services.cli import render, trace
from tests.unit.cli.conftest import reply

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def span(span_id, parent, depth, service, operation, start_ms, duration_ms, error=False):
    return {
        "span_id": span_id,
        "parent_id": parent,
        "depth": depth,
        "service": service,
        "operation": operation,
        "start_ms": start_ms,
        "duration_ms": duration_ms,
        "error": error,
        "tags": {},
    }


TRACE = {
    "available": True,
    "reason": None,
    "trace_id": TRACE_ID,
    "started_at": "2027-01-15T08:00:00Z",
    "duration_ms": 40.0,
    "services": ["gateway-1", "inference-1"],
    "truncated": False,
    "spans": [
        span("a1", None, 0, "gateway-1", "POST /api/models/{name}/predict", 0.0, 40.0),
        span("b1", "a1", 1, "gateway-1", "CallLocal/inference-1/predict", 10.0, 20.0),
        span("c1", "b1", 2, "inference-1", "predict", 20.0, 10.0, error=True),
    ],
}


def test_trace_prints_a_line_per_span_indented_with_its_bar(fake, cli, monkeypatch):
    fake.on("GET", f"/api/operations/traces/{TRACE_ID}", reply(200, TRACE))
    monkeypatch.setattr(render.out, "width", 120)
    result = cli("trace", TRACE_ID.upper())  # as some tools print it
    assert result.exit_code == 0, result.output
    assert fake.paths("GET") == [f"/api/operations/traces/{TRACE_ID}"]
    assert f"trace {TRACE_ID}: 40 ms, 3 spans, 1 failed" in result.stdout
    lines = result.stdout.splitlines()
    assert lines[1].split()[:5] == ["start", "took", "waterfall", "service", "operation"]
    spans = lines[2:]
    assert [line[52:].rstrip() for line in spans] == [
        "gateway-1  POST /api/models/{name}/predict",
        "  gateway-1  CallLocal/inference-1/predict",
        "    inference-1  ! predict",
    ]
    assert [line[:19].split() for line in spans] == [
        ["0", "ms", "40", "ms"],
        ["10", "ms", "20", "ms"],
        ["20", "ms", "10", "ms"],
    ]
    bars = [line[20:50] for line in spans]  # 30 characters for 40 ms
    assert [b.index("█") for b in bars] == [0, 7, 15]
    assert [b.count("█") for b in bars] == [30, 15, 8]


def test_a_narrow_terminal_cuts_the_operations_not_the_bars(fake, cli, monkeypatch):
    fake.on("GET", f"/api/operations/traces/{TRACE_ID}", reply(200, TRACE))
    monkeypatch.setattr(render.out, "width", 64)
    result = cli("trace", TRACE_ID)
    spans = result.stdout.splitlines()[2:]
    assert len(spans) == 3 and all(len(line) <= 64 for line in spans), result.stdout
    assert [line[20:50].count("█") for line in spans] == [30, 15, 8]
    assert spans[0].endswith("…")


def test_trace_json_prints_the_answer_and_a_bad_id_asks_nothing(fake, cli):
    fake.on("GET", f"/api/operations/traces/{TRACE_ID}", reply(200, TRACE))
    result = cli("trace", TRACE_ID, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == TRACE
    bad = cli("trace", "4bf9-not-hex")
    assert bad.exit_code == 2 and "32 hex digits" in bad.output
    assert len(fake.sent) == 1


def test_trace_says_why_when_the_backend_is_not_there_and_fails_on_an_unknown_trace(fake, cli):
    reason = "The trace backend is not configured (DAPRML_TRACES_URL)"
    fake.on(
        "GET",
        f"/api/operations/traces/{TRACE_ID}",
        reply(200, {**TRACE, "available": False, "reason": reason, "spans": []}),
    )
    result = cli("trace", TRACE_ID)
    assert result.exit_code == 0 and f"traces: {reason}" in " ".join(result.stdout.split())
    missing = "0" * 32
    fake.on(
        "GET", f"/api/operations/traces/{missing}", reply(404, {"detail": f"no trace {missing} in the trace backend"})
    )
    result = cli("trace", missing)
    assert result.exit_code == 1 and f"no trace {missing}" in result.output


def test_a_bar_has_at_least_one_block_and_stays_inside():
    assert trace.bar(0, 0, 10, width=10) == "█" + " " * 9
    assert trace.bar(10, 5, 10, width=10) == " " * 9 + "█"
    assert trace.bar(2, 100, 10, width=10) == "  " + "█" * 8

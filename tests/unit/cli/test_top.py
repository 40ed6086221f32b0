"""daprml top against the fake gateway: what it asks, and the numbers it shows."""

import json

from services.cli import top
from tests.unit.cli.conftest import reply


def current(rate, p50, p99, errors):
    return {"rate": rate, "p50_s": p50, "p99_s": p99, "error_share": errors}


SERVICES = {
    "available": True,
    "reason": None,
    "window": "15m",
    "step_s": 15,
    "times": [1.0, 2.0],
    "services": [
        {"service": "gateway", "app_id": "gateway", "current": current(12.5, 0.0031, 0.0452, 0.0), "series": {}},
        {"service": "inference", "app_id": "inference", "current": current(7.25, 0.0009, None, 0.125), "series": {}},
    ],
}
MODELS = {
    "available": True,
    "reason": None,
    "window": "15m",
    "step_s": 15,
    "times": [1.0, 2.0],
    "models": [{"model": "iris", "version": "3", "current": current(4.5, 0.0012, 0.0078, 0.0), "series": {}}],
}


def instance(up):
    return {"instance": "h:1", "up": up, "last_heartbeat_s": 1.0, "started_at": "2026-01-01T00:00:00Z", "error": None}


REPLICAS = {
    "ok": False,
    "metrics": {"available": True, "reason": None},
    "services": [
        {
            "service": "gateway",
            "app_id": "gateway",
            "reachable": True,
            "runtime_version": "1.18.2",
            "error": None,
            "instances": [instance(True)],
            "targets": [
                {"kind": "daprd", "instance": "h:3570", "up": True},
                {"kind": "app", "instance": "h:8100", "up": True},
            ],
        },
        {
            "service": "inference",
            "app_id": "inference",
            "reachable": True,
            "runtime_version": "1.18.2",
            "error": None,
            "instances": [instance(True), instance(False)],
            "targets": [{"kind": "daprd", "instance": "h:3574", "up": False}],
        },
        {
            "service": "notifier",
            "app_id": "notifier",
            "reachable": False,
            "runtime_version": None,
            "error": "down",
            "instances": [],
            "targets": [],
        },
    ],
}


def serve(fake, services=SERVICES, models=MODELS, replicas=REPLICAS):
    fake.on("GET", "/api/operations/services", reply(200, services))
    fake.on("GET", "/api/operations/models", reply(200, models))
    fake.on("GET", "/api/operations/replicas", reply(200, replicas))


def lines_of(stdout: str) -> dict[str, list[str]]:
    """Each table row, by its first cell: the cells split on the table's column separator."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 1 and cells[0]:
            rows[cells[0]] = cells
    return rows


def test_top_once_prints_each_services_and_models_numbers_and_replicas(fake, cli):
    serve(fake)
    result = cli("top", "--once")
    assert result.exit_code == 0, result.output
    rows = lines_of(result.stdout)
    assert rows["gateway"][1:] == ["12.5/s", "3.1 ms", "45.2 ms", "0.00%", "ok", "1/1", "1/1"]
    assert rows["inference"][1:] == ["7.25/s", "0.9 ms", "-", "12.50%", "ok", "1/2", "0/1"]
    assert rows["notifier"][1:] == ["-", "-", "-", "-", "DOWN", "-", "-"]
    assert rows["iris"][1:] == ["3", "4.5/s", "1.2 ms", "7.8 ms", "0.00%"]
    asked = [(r.url.path, dict(r.url.params)) for r in fake.sent]
    assert asked == [
        ("/api/operations/services", {"window": "15m"}),
        ("/api/operations/models", {"window": "15m"}),
        ("/api/operations/replicas", {}),
    ]


def test_top_says_why_there_are_no_numbers_when_prometheus_is_down(fake, cli):
    reason = "Prometheus is not answering at http://127.0.0.1:9090 (ConnectError): make up starts it"
    down = {**SERVICES, "available": False, "reason": reason, "services": []}
    serve(fake, services=down, models={**MODELS, "available": False, "reason": reason, "models": []})
    result = cli("top", "--once", "--window", "1h")
    assert result.exit_code == 0, result.output
    assert f"metrics: {reason}" in " ".join(result.stdout.split())
    assert lines_of(result.stdout)["inference"][5:] == ["ok", "1/2", "0/1"]  # replicas still shown
    assert dict(fake.sent[0].url.params) == {"window": "1h"}


def test_top_json_prints_the_three_answers_once(fake, cli):
    serve(fake)
    result = cli("top", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"services": SERVICES, "models": MODELS, "replicas": REPLICAS}


def test_top_refreshes_every_interval_until_ctrl_c(monkeypatch, fake, cli):
    serve(fake)
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(top.time, "sleep", sleep)
    result = cli("top", "--interval", "2")
    assert result.exit_code == 0, result.output
    assert slept == [2.0, 2.0]
    assert [r.url.path for r in fake.sent].count("/api/operations/services") == 2


def test_top_refuses_a_window_it_does_not_know_and_an_interval_under_a_second(fake, cli):
    assert cli("top", "--window", "1d").exit_code == 2
    assert cli("top", "--interval", "0").exit_code == 2
    assert fake.sent == []


def test_top_with_a_refused_key_exits_4(fake, cli):
    fake.on("GET", "/api/operations/services", reply(401, {"detail": "unknown API key"}))
    result = cli("top", "--once")
    assert result.exit_code == 4 and "unknown API key" in result.stderr


def test_slow_services_show_seconds_and_no_service_name_is_folded(fake, cli):
    # Seen on a real stack: the monitor's held deliveries (p50 1.75 s) widened the latency
    # columns to "1.75e+03 ms", and the 80-column table folded "inference" into "inferenc"/"e".
    slow = json.loads(json.dumps(SERVICES))
    slow["services"][1]["current"] = current(0.846, 1.75, 2.49, 0.0)
    serve(fake, services=slow)
    result = cli("top", "--once")
    rows = lines_of(result.stdout)
    assert rows["inference"][1:4] == ["0.846/s", "1.75 s", "2.49 s"], result.stdout

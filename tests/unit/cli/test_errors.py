"""Every failure is one readable line on stderr with an exit code scripts can test."""

import httpx
import pytest

from services.cli import client
from tests.unit.cli.conftest import reply


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_servers_detail_is_the_message_and_a_refusal_exits_1(fake, cli):
    fake.on("GET", "/api/datasets/nope", reply(404, {"detail": "dataset 'nope' does not exist"}))
    result = cli("datasets", "show", "nope")
    assert result.exit_code == 1
    assert one_line(result) == "daprml: dataset 'nope' does not exist (HTTP 404)"
    assert result.stdout == ""


def test_an_error_field_is_used_when_there_is_no_detail(fake, cli):
    fake.on("GET", "/api/status", reply(502, {"error": "bad gateway upstream"}))
    assert one_line(cli("status")) == "daprml: bad gateway upstream (HTTP 502)"


def test_validation_problems_are_named_by_where_they_are(fake, cli):
    problems = [{"loc": ["body", "records", 0, "rooms"], "msg": "expected a number", "type": "x"}] * 4
    fake.on("POST", "/api/training/jobs", reply(422, {"detail": problems}))
    result = cli("train", "houses", "--no-wait")
    assert result.exit_code == 1
    assert one_line(result) == (
        "daprml: records.0.rooms: expected a number; records.0.rooms: expected a number; "
        "records.0.rooms: expected a number (and 1 more) (HTTP 422)"
    )


def test_a_body_that_is_not_json_is_shown_on_one_line(fake, cli):
    fake.on("GET", "/api/models", httpx.Response(500, text="Internal\nServer   Error"))
    result = cli("models", "list")
    assert (result.exit_code, one_line(result)) == (1, "daprml: Internal Server Error (HTTP 500)")


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_exits_4_and_says_where_keys_come_from(fake, cli, status):
    fake.on("GET", "/api/models", reply(status, {"detail": "invalid API key"}))
    result = cli("models", "list")
    assert result.exit_code == 4
    assert one_line(result) == (
        f"daprml: invalid API key (HTTP {status}); check --key, DAPRML_API_KEY or .data/admin-key"
    )


def test_an_unreachable_gateway_exits_3_naming_the_url(monkeypatch, fake, cli):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(client, "TRANSPORT", httpx.MockTransport(refuse))
    result = cli("--url", "http://127.0.0.1:1/", "datasets", "list")
    assert result.exit_code == 3
    assert one_line(result) == "daprml: cannot reach the gateway at http://127.0.0.1:1 (is the stack up? make up)"


def test_a_gateway_that_does_not_answer_in_time_exits_3(monkeypatch, fake, cli):
    def slow(request):
        raise httpx.ReadTimeout("timed out", request=request)

    monkeypatch.setattr(client, "TRANSPORT", httpx.MockTransport(slow))
    result = cli("status")
    assert result.exit_code == 3 and "did not answer within" in one_line(result)


def test_a_restarting_service_is_retried_for_reads(monkeypatch, fake, cli):
    monkeypatch.setattr(client.time, "sleep", lambda s: None)
    ok = reply(200, {"ok": True, "services": []})
    fake.on("GET", "/api/status", [reply(503, {"detail": "restarting"}, **{"retry-after": "1"}), ok])
    assert cli("status").exit_code == 0
    assert fake.paths("GET") == ["/api/status", "/api/status"]


def test_a_post_is_not_retried(monkeypatch, fake, cli):
    fake.on("POST", "/api/models/m/rollback", reply(503, {"detail": "the registry is not answering"}))
    result = cli("models", "rollback", "m")
    assert result.exit_code == 1 and fake.paths("POST") == ["/api/models/m/rollback"]


@pytest.mark.parametrize(
    "args",
    [
        ["datasets", "upload", "missing.csv", "--name", "x"],
        ["datasets", "upload", "rows.txt", "--name", "x"],
        ["datasets", "upload", "rows.csv", "--name", "x", "--part-size", "lots"],
        ["predict", "m", "--file", "missing.csv"],
        ["predict", "m", "--file", "rows.csv", "--version", "1", "--alias", "champion"],
        ["predict", "m", "--file", "rows.csv", "--output", "out.parquet"],
        ["train", "houses", "--param", "no-equals-sign"],
    ],
)
def test_usage_mistakes_exit_2_with_one_line_and_send_nothing(fake, cli, tmp_path, args):
    (tmp_path / "rows.txt").write_text("a\n1\n")
    (tmp_path / "rows.csv").write_text("a\n1\n")
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert one_line(result).startswith("daprml: ")
    assert fake.sent == []


def test_an_unknown_option_is_a_usage_error(fake, cli):
    assert cli("datasets", "list", "--frobnicate").exit_code == 2
    assert cli("datasets", "upload", "f.csv", "--name", "x", "--task", "clustering").exit_code == 2


def test_a_rate_limited_request_waits_and_goes_again_whatever_its_method(monkeypatch, fake, cli):
    waits = []
    monkeypatch.setattr(client.time, "sleep", waits.append)
    moved = reply(200, {"model": "m", "alias": "champion", "version": 1, "previous": 2})
    fake.on("POST", "/api/models/m/rollback", [reply(429, {"detail": "slow down"}, **{"retry-after": "3"}), moved])
    result = cli("models", "rollback", "m")
    assert result.exit_code == 0 and waits == [3.0]


def test_a_rate_limit_that_lasts_is_reported(monkeypatch, fake, cli):
    monkeypatch.setattr(client.time, "sleep", lambda s: None)
    fake.on("GET", "/api/models", reply(429, {"detail": "too many requests for this key"}, **{"retry-after": "1"}))
    result = cli("models", "list")
    assert result.exit_code == 1 and len(fake.sent) == 4
    assert result.stderr.strip() == "daprml: too many requests for this key (HTTP 429)"

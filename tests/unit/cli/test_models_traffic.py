"""daprml models traffic: a model's traffic table shown, set (--canary, --shadow) and cleared
(--clear), with a reason for the history.

The fake answers are checked against the registry's own response model, so that they stay the
shape the gateway really answers."""

import json

import pytest

from services.registry.domain.views import TrafficView
from tests.unit.cli.conftest import reply

PATH = "/api/models/iris/traffic"


def view(canary=(), shadows=(), champion=1, by="ops lead") -> dict:
    answer = {
        "model": "iris",
        "champion": champion,
        "champion_percent": 100 - sum(p for _, p in canary),
        "traffic": {
            "canary": [{"version": v, "percent": p} for v, p in canary],
            "shadows": [{"version": v, "percent": p} for v, p in shadows],
        },
        "changed_at": "2026-03-01T10:00:00Z" if by else None,
        "changed_by": by,
    }
    return TrafficView.model_validate(answer).model_dump(mode="json")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_traffic_shows_the_champions_share_the_canaries_and_the_shadows(fake, cli):
    fake.on("GET", PATH, reply(200, view(canary=[(2, 30), (3, 12.5)], shadows=[(4, 20)])))
    result = cli("models", "traffic", "iris")
    assert result.exit_code == 0, result.stdout
    out = flat(result.stdout)
    for shown in ("v1: 57.5% of its requests", "v2 30%, v3 12.5%", "v4 20% (copies", "2026-03-01 10:00:00 by ops lead"):
        assert shown in out, (shown, result.stdout)
    assert fake.paths("PUT") == fake.paths("DELETE") == []


def test_an_empty_table_says_the_champion_serves_everything(fake, cli):
    fake.on("GET", PATH, reply(200, view(by=None)))
    out = flat(cli("models", "traffic", "iris").stdout)
    assert "v1: 100% of its requests" in out and "canaries none" in out and "by -" in out


def test_canary_and_shadow_options_set_the_whole_table_with_the_reason(fake, cli):
    fake.on("PUT", PATH, reply(200, view(canary=[(2, 30), (3, 10)], shadows=[(4, 50)])))
    result = cli(
        "models", "traffic", "iris", "--canary", "2=30", "--canary", "v3=10%", "--shadow", "4=50", "--reason", "try v2"
    )
    assert result.exit_code == 0, result.stdout
    assert fake.bodies("PUT", PATH) == [
        {"canary": [{"version": 2, "percent": 30.0}, {"version": 3, "percent": 10.0}],
         "shadows": [{"version": 4, "percent": 50.0}]}
    ]  # fmt: skip
    assert dict(fake.sent[0].url.params) == {"reason": "try v2"}
    assert "v1: 60% of its requests" in flat(result.stdout)


def test_shadows_alone_leave_no_canary(fake, cli):
    fake.on("PUT", PATH, reply(200, view(shadows=[(2, 100)])))
    assert cli("models", "traffic", "iris", "--shadow", "2=100").exit_code == 0
    assert fake.bodies("PUT", PATH) == [{"canary": [], "shadows": [{"version": 2, "percent": 100.0}]}]
    assert dict(fake.sent[0].url.params) == {}


def test_clear_empties_the_table_and_json_prints_the_answer(fake, cli):
    fake.on("DELETE", PATH, reply(200, view()))
    result = cli("models", "traffic", "iris", "--clear", "--reason", "v2 done", "--json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["traffic"] == {"canary": [], "shadows": []}
    assert [(r.method, dict(r.url.params)) for r in fake.sent] == [("DELETE", {"reason": "v2 done"})]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--canary", "2"], "--canary '2': write VERSION=PERCENT, such as --canary 2=30"),
        (["--shadow", "two=5"], "--shadow 'two=5': write VERSION=PERCENT"),
        (["--canary", "2=lots"], "write VERSION=PERCENT"),
        (["--canary", "2=30", "--clear"], "not both"),
        (["--reason", "why"], "--reason goes with a change"),
    ],
)
def test_a_bad_option_is_a_usage_error_and_nothing_is_sent(fake, cli, args, says):
    result = cli("models", "traffic", "iris", *args)
    assert result.exit_code == 2 and says in result.stderr, result.stderr
    assert fake.sent == []


def test_the_registrys_refusal_is_shown_as_it_is(fake, cli):
    refused = {"detail": "version 1 is the champion of model 'iris': it serves what the canaries leave"}
    fake.on("PUT", PATH, reply(422, refused))
    result = cli("models", "traffic", "iris", "--canary", "1=10")
    assert result.exit_code == 1 and "version 1 is the champion" in result.stderr and "HTTP 422" in result.stderr


def test_the_history_shows_a_traffic_change_in_a_few_words(fake, cli):
    entry = {
        "seq": 3, "at": "2026-03-01T10:00:00Z", "actor": "ops lead", "action": "traffic.changed", "reason": "try v2",
        "details": {"from": {"canary": [], "shadows": []},
                    "to": {"canary": [{"version": 2, "percent": 30.0}], "shadows": [{"version": 3, "percent": 5.0}]}},
    }  # fmt: skip
    fake.on("GET", "/api/models/iris/history", reply(200, {"model": "iris", "total": 3, "entries": [entry]}))
    out = flat(cli("models", "history", "iris").stdout)
    # (the table may fold the cell: its two halves)
    assert "traffic: empty -> canary v2 30%;" in out and "shadows v3 5%" in out and "try v2" in out

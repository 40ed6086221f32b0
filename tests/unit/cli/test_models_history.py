"""daprml models history: who did what to a model, why and when; reasons sent with moves."""

from tests.unit.cli.conftest import reply

HISTORY = {
    "model": "houses",
    "total": 7,
    "entries": [
        {
            "seq": 7,
            "at": "2026-03-01T10:00:00Z",
            "actor": "ops lead",
            "action": "alias.moved",
            "reason": "v3 drifts",
            "details": {"alias": "champion", "from": 3, "to": 2, "cause": "rollback"},
        },
        {
            "seq": 6,
            "at": "2026-02-28T10:00:00Z",
            "actor": "trainer",
            "action": "policy.changed",
            "reason": "",
            "details": {"from": {"mode": "manual"}, "to": {"mode": "auto"}},
        },
        {
            "seq": 5,
            "at": "2026-02-27T10:00:00Z",
            "actor": "monitor",
            "action": "monitoring.check",
            "reason": "area drifted",
            "details": {"psi": 0.4},
        },
    ],
    "next_before": 5,
}


def test_history_shows_who_what_why_and_how_to_page_back(fake, cli):
    fake.on("GET", "/api/models/houses/history", reply(200, HISTORY))
    result = cli("models", "history", "houses", "--limit", "3")
    assert result.exit_code == 0, result.stdout
    out = " ".join(result.stdout.split())
    for shown in ("ops lead", "champion: v3 -> v2", "(rollback)", "v3 drifts", "policy: manual -> auto", "psi=0.4"):
        assert shown in out, (shown, result.stdout)
    assert "older: --before 5" in out
    assert dict(fake.sent[0].url.params) == {"limit": "3"}


def test_history_pages_with_before_and_prints_json_for_scripts(fake, cli):
    fake.on("GET", "/api/models/houses/history", reply(200, HISTORY))
    result = cli("models", "history", "houses", "--before", "5", "--json")
    assert result.exit_code == 0 and '"seq": 7' in result.stdout
    assert dict(fake.sent[0].url.params) == {"limit": "20", "before": "5"}


def test_a_reason_goes_with_a_promotion_and_a_rollback(fake, cli):
    moved = {"model": "houses", "alias": "champion", "version": 2, "previous": 3}
    fake.on("PUT", "/api/models/houses/aliases/champion", reply(200, moved))
    fake.on("POST", "/api/models/houses/rollback", reply(200, moved))
    assert cli("models", "promote", "houses", "2", "--reason", "v2 & co").exit_code == 0
    assert cli("models", "rollback", "houses", "--reason", "slow").exit_code == 0
    assert [dict(r.url.params) for r in fake.sent] == [{"reason": "v2 & co"}, {"reason": "slow"}]
    assert fake.bodies("PUT", "/api/models/houses/aliases/champion") == [{"version": 2}]

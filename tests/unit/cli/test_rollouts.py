"""daprml rollouts: start (a plan in the plain form, JSON or a file, checked against the contract
before anything is sent), list, show (--watch polls until it finishes), approve, reject, abort.

The fake answers are made through the contract's Rollout model, so that they stay the shape the
registry answers."""

import json

import pytest

from services.cli import rollouts
from services.cli.rollouts import parse_plan, step_words
from services.common.contracts.rollouts import Rollout, RolloutList
from tests.unit.cli.conftest import reply

ID = "iris-2-0f3a9c"
BASE = "/api/models/iris/rollouts"
PLAN = [{"shadow": 20, "for": "10m"}, {"canary": 30, "for": 200}, {"approval": True}, {"promote": True}]
AGREEMENT = {"gate": "agreement", "candidate": 0.96, "champion": None, "bound": 0.9, "samples": 40, "passed": True}
LATENCY = {"gate": "latency_p99", "candidate": 12.5, "champion": 8.0, "bound": 26.0, "samples": 40, "passed": None}


def rollout(status="running", step=1, gates=(AGREEMENT, LATENCY), outcome=None, **extra) -> dict:
    answer = {
        "id": ID, "model": "iris", "candidate": 2, "champion": 1, "plan": PLAN, "gates": {}, "status": status,
        "step": step, "step_started_at": "2026-03-01T10:10:00Z", "step_predictions": 57,
        "traffic": {"canary": [{"version": 2, "percent": 30}], "shadows": []}, "gate_results": list(gates),
        "outcome": outcome, "reason": "v2 fixes the drift", "started_by": "ops lead",
        "started_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-01T10:11:00Z",
    } | extra  # fmt: skip
    return Rollout.model_validate(answer).model_dump(mode="json")


def flat(text: str) -> str:
    return " ".join(text.split())


def rows(text: str) -> list[list[str]]:
    """A table's body lines as their cells (a cell folded over lines is not joined)."""
    return [[c.strip() for c in line.split("│")] for line in text.splitlines() if "│" in line]


# the plan


@pytest.mark.parametrize(
    ("given", "plan"),
    [
        ("shadow=20:10m,canary=30:200,approval,promote", PLAN),
        (" canary=12.5% , promote ", [{"canary": 12.5}, {"promote": True}]),
        ("shadow=100:30s", [{"shadow": 100, "for": "30s"}]),
        (json.dumps(PLAN), PLAN),
    ],
)
def test_a_plan_reads_in_the_plain_form_or_as_json(given, plan):
    assert parse_plan(given) == {"plan": plan}


def test_a_plan_in_a_file_may_carry_its_gates(tmp_path):
    written = {"plan": PLAN, "gates": {"min_samples": 50}}
    (tmp_path / "plan.json").write_text(json.dumps(written))
    assert parse_plan(f"@{tmp_path / 'plan.json'}") == written


def test_start_sends_the_plan_and_the_reason_and_shows_the_rollout(fake, cli):
    fake.on("POST", BASE, reply(201, rollout(step=0, gates=())))
    plan = "shadow=20:10m,canary=30:200,approval,promote"
    result = cli("rollouts", "start", "iris", "--candidate", "2", "--plan", plan, "--reason", "v2 fixes the drift")
    assert result.exit_code == 0, result.output
    assert fake.bodies("POST", BASE) == [{"candidate": 2, "plan": PLAN, "reason": "v2 fixes the drift"}]
    out = flat(result.stdout)
    assert f"rollout {ID}" in out and "step 1 of 4: shadow 20% for 10m" in out
    assert f"daprml rollouts show iris {ID} --watch" in out


def test_start_with_a_json_file_sends_its_gates(fake, cli, tmp_path):
    (tmp_path / "plan.json").write_text(
        json.dumps({"plan": [{"canary": 10}, {"promote": True}], "gates": {"min_samples": 5}})
    )
    fake.on("POST", BASE, reply(201, rollout(step=0)))
    result = cli("rollouts", "start", "iris", "--candidate", "2", "--plan", "@plan.json", "--json")
    assert result.exit_code == 0, result.output
    assert fake.bodies("POST", BASE) == [
        {"candidate": 2, "plan": [{"canary": 10}, {"promote": True}], "gates": {"min_samples": 5}}
    ]
    assert json.loads(result.stdout)["id"] == ID


@pytest.mark.parametrize(
    ("plan", "says"),
    [
        ("shadow=20:10m,canary", "--plan step 'canary': write steps such as shadow=20:10m"),
        ("canary=100", "step 1: canary: Input should be less than 100"),
        ("shadow=20:10 minutes", "step 1: '10 minutes' is not a duration such as 30s, 10m or 2h"),
        ("promote,canary=10", "promote can only be the plan's last step"),
        ("canary=0:5m", "step 1: canary: Input should be greater than 0"),
        ('[{"canary": 10, "shadow": 5}]', "step 1: a step is one of shadow, canary"),
        ('{"steps": []}', '--plan as JSON is a list of steps, or {"plan": [...]'),
        ("[{", "--plan is not valid JSON"),
        ("@missing.json", "--plan missing.json: cannot read it"),
        ("", "--plan is empty"),
    ],
)
def test_a_bad_plan_is_a_usage_error_saying_what_is_wrong_and_nothing_is_sent(fake, cli, plan, says):
    result = cli("rollouts", "start", "iris", "--candidate", "2", "--plan", plan)
    assert result.exit_code == 2 and says in result.stderr, result.stderr
    assert fake.sent == []


def test_the_registrys_refusal_of_a_start_is_shown_as_it_is(fake, cli):
    fake.on("POST", BASE, reply(409, {"detail": "model 'iris' has a rollout running: iris-3-aa"}))
    result = cli("rollouts", "start", "iris", "--candidate", "2", "--plan", "canary=10,promote")
    assert result.exit_code == 1 and "has a rollout running" in result.stderr and "HTTP 409" in result.stderr


# reading


def test_show_gives_the_step_the_weights_and_each_gates_numbers(fake, cli):
    fake.on("GET", f"{BASE}/{ID}", reply(200, rollout()))
    result = cli("rollouts", "show", "iris", ID)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    shown = [
        "v2 against champion v1",
        "status running",
        "step 2 of 4: canary 30% for 200 predictions",
        "predictions 57 since 2026-03-01 10:10:00",
        "canary v2 30%",
        "started 2026-03-01 10:00:00 by ops lead",
    ]
    assert [s for s in shown if s not in out] == [], result.stdout
    assert rows(result.stdout) == [
        ["agreement", "0.96", "-", "0.9", "40", "yes"],
        ["latency_p99", "12.5", "8", "26", "40", "not yet"],
    ]
    assert fake.paths("POST") == []


def test_show_says_who_must_act_on_a_rollout_waiting_for_approval(fake, cli):
    fake.on("GET", f"{BASE}/{ID}", reply(200, rollout("waiting_for_approval", step=2, gates=())))
    out = flat(cli("rollouts", "show", "iris", ID).stdout)
    assert "waiting for approval" in out and "step 3 of 4: approval" in out and "in this step" not in out
    assert f"daprml rollouts approve|reject iris {ID}" in out


def test_list_shows_each_rollout_in_a_line(fake, cli):
    older = rollout("rolled_back", step=0, id="iris-2-000001", outcome="gate agreement failed: 0.71 < 0.9")
    fake.on("GET", BASE, reply(200, RolloutList(model="iris", rollouts=[rollout(), older]).model_dump(mode="json")))
    result = cli("rollouts", "list", "iris")
    assert result.exit_code == 0, result.output
    first, second = [r for r in rows(result.stdout) if r[0]]  # a folded cell's further lines start empty
    assert first[:4] == [ID, "v2", "running", "2/4 canary"]
    assert second[:4] == ["iris-2-000001", "v2", "rolled back", "1/4 shadow"]
    assert "gate" in second[5]


def test_list_of_a_model_without_rollouts_says_so_and_json_prints_the_answer(fake, cli):
    fake.on("GET", BASE, reply(200, {"model": "iris", "rollouts": []}))
    assert "iris: no rollouts yet" in cli("rollouts", "list", "iris").stdout
    assert json.loads(cli("rollouts", "list", "iris", "--json").stdout) == {"model": "iris", "rollouts": []}


def test_watch_polls_until_the_rollout_finishes_and_shows_how_it_ended(monkeypatch, fake, cli):
    slept: list[float] = []
    monkeypatch.setattr(rollouts.time, "sleep", slept.append)
    promoted = rollout("promoted", step=3, gates=(), outcome="v2 is champion", finished_at="2026-03-01T11:00:00Z")
    fake.on("GET", f"{BASE}/{ID}", [reply(200, rollout()), reply(200, rollout()), reply(200, promoted)])
    result = cli("rollouts", "show", "iris", ID, "--watch")
    assert result.exit_code == 0, result.output
    assert slept == [2.0, 2.0] and len(fake.paths("GET")) == 3
    assert "outcome v2 is champion" in flat(result.stdout)
    changes = [line for line in result.stderr.splitlines() if "step" in line]
    assert len(changes) == 2 and "promoted: step 4 of 4: promote" in changes[-1]  # a line per change, not per poll


def test_watch_exits_1_with_the_outcome_when_the_rollout_is_rolled_back(monkeypatch, fake, cli):
    monkeypatch.setattr(rollouts.time, "sleep", lambda s: None)
    failed = {**AGREEMENT, "candidate": 0.71, "passed": False}
    rolled_back = rollout("rolled_back", gates=(failed,), outcome="gate agreement failed: 0.71 < 0.9 over 40")
    fake.on("GET", f"{BASE}/{ID}", reply(200, rolled_back))
    result = cli("rollouts", "show", "iris", ID, "--watch", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "rolled_back"
    assert result.stderr.strip().endswith(
        f"daprml: rollout {ID} rolled back: gate agreement failed: 0.71 < 0.9 over 40"
    )


def test_watch_gives_up_after_its_timeout_saying_how_to_follow(monkeypatch, fake, cli):
    clock = iter(range(0, 10_000, 2))
    monkeypatch.setattr(rollouts.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(rollouts.time, "sleep", lambda s: None)
    fake.on("GET", f"{BASE}/{ID}", reply(200, rollout("waiting_for_approval", step=2, gates=())))
    result = cli("rollouts", "show", "iris", ID, "--watch", "--timeout", "10")
    assert result.exit_code == 1
    assert "is still waiting for approval after 10 s" in result.stderr
    assert 3 <= len(fake.paths("GET")) <= 6  # bounded by the timeout, not by the rollout


# decisions


@pytest.mark.parametrize("action", ["approve", "reject", "abort"])
def test_a_decision_posts_to_its_route_with_the_reason(fake, cli, action):
    fake.on("POST", f"{BASE}/{ID}/{action}", reply(200, rollout("running", step=3, gates=())))
    result = cli("rollouts", action, "iris", ID, "--reason", "looks good & safe")
    assert result.exit_code == 0, result.output
    assert [(r.method, r.url.path, dict(r.url.params)) for r in fake.sent] == [
        ("POST", f"{BASE}/{ID}/{action}", {"reason": "looks good & safe"})
    ]
    assert f"rollout {ID}" in flat(result.stdout)


def test_a_decision_without_a_reason_sends_no_query_and_a_refused_key_exits_4(fake, cli):
    fake.on("POST", f"{BASE}/{ID}/abort", reply(403, {"detail": "this key's roles (reader) do not allow it: admin"}))
    result = cli("rollouts", "abort", "iris", ID)
    assert result.exit_code == 4 and "admin" in result.stderr
    assert dict(fake.sent[0].url.params) == {}


def test_an_id_is_sent_as_one_path_segment(fake, cli):
    cli("rollouts", "show", "iris", "../../keys")
    assert [r.url.raw_path for r in fake.sent] == [b"/api/models/iris/rollouts/..%2F..%2Fkeys"]


def test_steps_read_in_a_few_words():
    assert [step_words(s) for s in PLAN] == [
        "shadow 20% for 10m", "canary 30% for 200 predictions", "approval", "promote"
    ]  # fmt: skip
    assert step_words({"canary": 12.5}) == "canary 12.5% for 10m"  # the contract's default
    assert step_words({"approval": True, "timeout": "2h"}) == "approval (timeout 2h)"

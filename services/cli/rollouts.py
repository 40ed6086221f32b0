"""daprml rollouts start | list | show | approve | reject | abort: a candidate version brought
to champion in steps (shadow, canary, approval, promote), each held to gates on live evidence,
through /api/models/{name}/rollouts (services/common/contracts/rollouts.py).

A plan is JSON (a list of steps, or {"plan": [...], "gates": {...}}; `@file.json` reads a file)
or the plain form: steps separated by commas, each `shadow=PERCENT[:FOR]`,
`canary=PERCENT[:FOR]`, `approval` or `promote`, where FOR is a duration (30s, 10m, 2h) or a
number of predictions: `shadow=20:10m,canary=30:200,approval,promote`."""

import json as jsonlib
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from services.cli import render, traffic
from services.cli.base import Json, gateway, handled, new_group
from services.cli.client import REFUSED, USAGE, CliError, Gateway, q
from services.common.contracts import DEFAULT_FOR, FINISHED, StartRollout

app = new_group(
    "Rollouts: a candidate version brought to champion in steps (shadow, canary, approval, promote), "
    "each held to gates on live evidence against the champion."
)
Reason = Annotated[str | None, typer.Option(help="Why, kept in the model's history (models history NAME).")]
RolloutId = Annotated[str, typer.Argument(metavar="ID", help="The rollout's id (rollouts list NAME).")]
POLL_S = 2.0
ENDED_BADLY = ("rolled_back", "failed")  # `show --watch` exits 1 on these
PLAIN_STEP = re.compile(r"^(shadow|canary)=([0-9]+(?:\.[0-9]+)?)%?(?::(.+))?$")
PLAIN_HELP = (
    "write steps such as shadow=20:10m,canary=30:200,approval,promote (shadow|canary=PERCENT[:FOR], "
    "FOR a duration 30s/10m/2h or a number of predictions), or JSON"
)


# the plan


def parse_plan(text: str) -> dict[str, Any]:
    """--plan as {"plan": [...]} (and "gates", from JSON): JSON, @file.json or the plain form."""
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"--plan {path}: cannot read it ({exc.strerror or exc})", USAGE) from None
    if text.startswith(("[", "{")):
        return _json_plan(text)
    if not text:
        raise CliError(f"--plan is empty: {PLAIN_HELP}", USAGE)
    return {"plan": [_plain_step(part) for part in text.split(",")]}


def _json_plan(text: str) -> dict[str, Any]:
    try:
        given = jsonlib.loads(text)
    except ValueError as exc:
        raise CliError(f"--plan is not valid JSON: {exc}", USAGE) from None
    if isinstance(given, list):
        return {"plan": given}
    if isinstance(given, dict) and "plan" in given and set(given) <= {"plan", "gates"}:
        return given
    raise CliError('--plan as JSON is a list of steps, or {"plan": [...], "gates": {...}}', USAGE)


def _plain_step(part: str) -> dict[str, Any]:
    word = part.strip()
    if word in ("approval", "promote"):
        return {word: True}
    match = PLAIN_STEP.match(word)
    if match is None:
        raise CliError(f"--plan step {word!r}: {PLAIN_HELP}", USAGE)
    kind, percent, length = match.groups()
    step: dict[str, Any] = {kind: _number(percent)}
    if length is not None:
        step["for"] = int(length) if length.isdigit() else length
    return step


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def start_body(candidate: int, plan: str, reason: str | None) -> dict[str, Any]:
    """The body of POST .../rollouts, checked against the contract before it is sent: a plan the
    registry would refuse is a usage error naming the step."""
    body: dict[str, Any] = {"candidate": candidate, **parse_plan(plan)}
    if reason:
        body["reason"] = reason
    try:
        StartRollout.model_validate(body)
    except ValidationError as exc:
        raise CliError(f"--plan: {problems(exc)}", USAGE) from None
    return body


def problems(exc: ValidationError) -> str:
    """The contract's complaints, each where it is ("step 2: ..."), at most three."""
    said = []
    for error in exc.errors()[:3]:
        loc = list(error["loc"])
        where = f"step {loc[1] + 1}" if loc[:1] == ["plan"] and len(loc) > 1 and isinstance(loc[1], int) else ""
        rest = ".".join(str(p) for p in loc[2 if where else 0 :] if not str(p).startswith("function-after"))
        message = str(error["msg"]).removeprefix("Value error, ")
        said.append(" ".join(w for w in (f"{where}:" if where else "", f"{rest}:" if rest else "", message) if w))
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(said) + more


# what is shown


def step_words(step: dict[str, Any]) -> str:
    """One step in a few words: "canary 30% for 200 predictions", "approval (timeout 2h)"."""
    timeout = f" (timeout {step['timeout']})" if step.get("timeout") else ""
    for kind in ("shadow", "canary"):
        if step.get(kind) is not None:
            length = step.get("for")
            lasts = f"{length} predictions" if isinstance(length, int) else (length or DEFAULT_FOR)
            return f"{kind} {step[kind]:g}% for {lasts}{timeout}"
    return ("approval" if step.get("approval") else "promote") + timeout


def at_step(rollout: dict[str, Any]) -> str:
    """Where it is: "2 of 4: canary 30% for 200 predictions"."""
    index, plan = rollout.get("step"), rollout["plan"]
    if index is None or not 0 <= index < len(plan):
        return f"- of {len(plan)}"
    return f"{index + 1} of {len(plan)}: {step_words(plan[index])}"


def short_step(rollout: dict[str, Any]) -> str:
    """Where it is, for a list: "2/4 canary"."""
    index, plan = rollout.get("step"), rollout["plan"]
    if index is None or not 0 <= index < len(plan):
        return f"-/{len(plan)}"
    kind = next(k for k in ("shadow", "canary", "approval", "promote") if plan[index].get(k) not in (None, False))
    return f"{index + 1}/{len(plan)} {kind}"


def weights(rollout: dict[str, Any]) -> str:
    table = rollout.get("traffic") or {}
    canary, shadows = table.get("canary") or [], table.get("shadows") or []
    if not canary and not shadows:
        return "champion serves everything"
    return traffic.describe(table)


def passed(value: bool | None) -> str:
    return "not yet" if value is None else ("yes" if value else "NO")


def show(rollout: dict[str, Any]) -> None:
    champion = rollout.get("champion")
    pairs: list[tuple[str, Any]] = [
        ("rollout", rollout["id"]),
        ("model", f"{rollout['model']}: v{rollout['candidate']} against champion v{champion or '-'}"),
        ("status", rollout["status"].replace("_", " ")),
        ("step", at_step(rollout)),
        ("plan", " -> ".join(step_words(s) for s in rollout["plan"])),
        ("deadline", when(rollout, "deadline")),
        ("traffic", weights(rollout)),
        ("started", f"{when(rollout, 'started_at')} by {rollout['started_by']}"),
        ("why", rollout.get("reason") or "-"),
    ]
    if rollout.get("finished_at"):
        pairs.append(("finished", when(rollout, "finished_at")))
    if rollout.get("outcome"):
        pairs.append(("outcome", rollout["outcome"]))
    index, plan = rollout.get("step"), rollout["plan"]
    if index is not None and 0 <= index < len(plan) and (plan[index].get("shadow") or plan[index].get("canary")):
        predictions = f"{rollout.get('step_predictions', 0)} since {when(rollout, 'step_started_at')}"
        pairs.insert(5, ("predictions", f"{predictions} (the candidate's, in this step)"))
    render.fields(pairs)
    if rollout["status"] == "waiting_for_approval":
        render.out.print(
            f"waiting for a person: daprml rollouts approve|reject {rollout['model']} {rollout['id']}", markup=False
        )
    gates = [
        (g["gate"], g.get("candidate"), g.get("champion"), g.get("bound"), g.get("samples", 0), passed(g.get("passed")))
        for g in rollout.get("gate_results") or []
    ]
    if gates:
        render.table("gates (this step)", ["gate", "candidate", "champion", "bound", "samples", "passed"], gates)


def when(rollout: dict[str, Any], key: str) -> str:
    return render.when(rollout.get(key))


def summary(rollout: dict[str, Any]) -> str:
    """One line while watching: the status, the step and each gate's reading."""
    gates = ", ".join(
        f"{g['gate']} {render.cell(g.get('candidate'))} ({g.get('samples', 0)}) {passed(g.get('passed'))}"
        for g in rollout.get("gate_results") or []
    )
    return f"{rollout['status'].replace('_', ' ')}: step {at_step(rollout)}" + (f"; gates: {gates}" if gates else "")


def watch(gw: Gateway, path: str, rollout: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Polls the rollout every POLL_S seconds until it finishes, a line on stderr at each change,
    for at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    said = None
    while True:
        line = summary(rollout)
        if line != said:
            render.err.print(f"{time.strftime('%H:%M:%S')} {line}", markup=False)
            said = line
        if rollout["status"] in FINISHED:
            return rollout
        if time.monotonic() + POLL_S > deadline:
            raise CliError(
                f"rollout {rollout['id']} is still {rollout['status'].replace('_', ' ')} after {timeout_s:g} s; "
                f"follow it with: daprml rollouts show {rollout['model']} {rollout['id']} --watch",
                REFUSED,
            )
        time.sleep(POLL_S)
        rollout = gw.get(path)


# the commands


@app.command("start")
@handled
def start_command(
    ctx: typer.Context,
    name: str,
    candidate: Annotated[int, typer.Option(min=1, help="The version rolled out (not the champion).")],
    plan: Annotated[
        str,
        typer.Option(
            metavar="PLAN",
            help="The steps: shadow=20:10m,canary=30:200,approval,promote (FOR: 30s, 10m, 2h or a number of "
            'predictions), or JSON: \'[{"shadow": 20, "for": "10m"}, ...]\', or @plan.json.',
        ),
    ],
    reason: Reason = None,
    json: Json = False,
) -> None:
    """Starts a rollout of a candidate version by a plan (an admin key); follow it with show --watch."""
    body = start_body(candidate, plan, reason)
    rollout = gateway(ctx).post(f"/api/models/{q(name)}/rollouts", body)
    if json:
        render.print_json(rollout)
        return
    show(rollout)
    render.out.print(f"follow it: daprml rollouts show {name} {rollout['id']} --watch", markup=False)


@app.command("list")
@handled
def list_command(ctx: typer.Context, name: str, json: Json = False) -> None:
    """A model's rollouts, newest first."""
    answer = gateway(ctx).get(f"/api/models/{q(name)}/rollouts")
    if json:
        render.print_json(answer)
        return
    rows = [
        (
            r["id"],
            f"v{r['candidate']}",
            r["status"].replace("_", " "),
            short_step(r),
            f"{when(r, 'started_at')} by {r['started_by']}",
            r.get("outcome") or "-",
        )
        for r in answer["rollouts"]
    ]
    if not rows:
        render.out.print(f"{name}: no rollouts yet", markup=False)
        return
    render.table(f"rollouts of {name}, newest first", ["id", "version", "status", "step", "started", "outcome"], rows)


@app.command("show")
@handled
def show_command(
    ctx: typer.Context,
    name: str,
    rollout_id: RolloutId,
    watch_: Annotated[
        bool, typer.Option("--watch", help=f"Poll every {POLL_S:g} s until it finishes (exit 1 if rolled back).")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to watch before giving up (exit 1).")] = 600,
    json: Json = False,
) -> None:
    """One rollout: its status, the step it is in, the traffic it set, its gates' readings, its outcome."""
    gw = gateway(ctx)
    path = f"/api/models/{q(name)}/rollouts/{q(rollout_id)}"
    rollout = gw.get(path)
    if watch_:
        rollout = watch(gw, path, rollout, timeout)
    if json:
        render.print_json(rollout)
    else:
        show(rollout)
    if watch_ and rollout["status"] in ENDED_BADLY:
        raise CliError(f"rollout {rollout['id']} {rollout['status'].replace('_', ' ')}: {rollout.get('outcome')}")


def _decide(ctx: typer.Context, name: str, rollout_id: str, action: str, reason: str | None, json: bool) -> None:
    params = {"reason": reason} if reason else {}
    path = f"/api/models/{q(name)}/rollouts/{q(rollout_id)}/{action}"
    rollout = gateway(ctx).request("POST", path, params=params).json()
    if json:
        render.print_json(rollout)
    else:
        show(rollout)


@app.command("approve")
@handled
def approve_command(
    ctx: typer.Context, name: str, rollout_id: RolloutId, reason: Reason = None, json: Json = False
) -> None:
    """Lets a rollout waiting for approval go on (an admin key)."""
    _decide(ctx, name, rollout_id, "approve", reason, json)


@app.command("reject")
@handled
def reject_command(
    ctx: typer.Context, name: str, rollout_id: RolloutId, reason: Reason = None, json: Json = False
) -> None:
    """Rolls back a rollout waiting for approval (an admin key)."""
    _decide(ctx, name, rollout_id, "reject", reason, json)


@app.command("abort")
@handled
def abort_command(
    ctx: typer.Context, name: str, rollout_id: RolloutId, reason: Reason = None, json: Json = False
) -> None:
    """Stops a rollout that has not finished and rolls it back (an admin key)."""
    _decide(ctx, name, rollout_id, "abort", reason, json)

"""daprml models list | show | history | promote | rollback | traffic | monitor"""

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from services.cli import render, traffic
from services.cli.base import Json, gateway, handled, new_group
from services.cli.client import q
from services.cli.datasets import all_pages

app = new_group(
    "Registered models: versions, metrics, aliases, their history, promotion, rollback and traffic (canaries, shadows)."
)
Reason = Annotated[str | None, typer.Option(help="Why, kept in the model's history (models history NAME).")]


@app.command("list")
@handled
def list_command(ctx: typer.Context, json: Json = False) -> None:
    """The models, with their versions and aliases."""
    answer = all_pages(gateway(ctx), "/api/models", "models")
    if json:
        render.print_json(answer)
        return
    rows = [(m["name"], m["task"], m["versions"], m["latest_version"], m["aliases"]) for m in answer["models"]]
    render.table(None, ["name", "task", "versions", "latest", "aliases"], rows)


@app.command("show")
@handled
def show_command(
    ctx: typer.Context,
    name: str,
    version: Annotated[
        str | None, typer.Option(help="A version number or an alias: its lineage, metrics and card.")
    ] = None,
    json: Json = False,
) -> None:
    """A model (versions with their metrics, aliases, history), or one version with --version."""
    gw = gateway(ctx)
    if version is not None:
        detail = gw.get(f"/api/models/{q(name)}/versions/{q(version)}")
        if json:
            render.print_json(detail)
        else:
            show_version(detail)
        return
    info = gw.get(f"/api/models/{q(name)}")
    if json:
        render.print_json(info)
        return
    render.fields(
        [("model", info["name"]), ("task", info["task"]), ("policy", info["policy"]), ("aliases", info["aliases"])]
    )
    rows = [
        (
            v["version"],
            v["aliases"],
            f"{v['dataset']} v{v['dataset_version']}",
            v["estimator"],
            v["metrics"],
            render.when(v["created_at"]),
        )
        for v in info["versions"]
    ]
    render.table("versions", ["version", "aliases", "dataset", "estimator", "metrics", "created"], rows)
    history = [
        (render.when(h["at"]), h["alias"], h["from"], h["to"], h["reason"], h.get("actor") or "-")
        for h in info["history"][-10:]
    ]
    if history:
        render.table(
            "alias moves (latest 10; all changes: models history)",
            ["when", "alias", "from", "to", "how", "by"],
            history,
        )


@app.command("history")
@handled
def history_command(
    ctx: typer.Context,
    name: str,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Entries to show, newest first.")] = 20,
    before: Annotated[int | None, typer.Option(min=1, help="Only entries older than this number (paging).")] = None,
    json: Json = False,
) -> None:
    """What was done to a model (alias moves, policy changes, monitoring actions): who, what, why, when."""
    answer = gateway(ctx).get(f"/api/models/{q(name)}/history", limit=limit, before=before)
    if json:
        render.print_json(answer)
        return
    rows = [(e["seq"], render.when(e["at"]), e["actor"], what(e), e["reason"] or "-") for e in answer["entries"]]
    if not rows:
        render.out.print(f"{name}: no history yet", markup=False)
        return
    title = f"history of {name} ({answer['total']} entries, newest first)"
    render.table(title, ["#", "when", "who", "what", "why"], rows)
    if answer.get("next_before"):
        render.out.print(f"older: --before {answer['next_before']}", markup=False)


def what(entry: dict[str, Any]) -> str:
    """One entry's change in a few words."""
    details = entry.get("details") or {}
    if entry["action"] == "alias.moved":
        to = f"v{details['to']}" if details.get("to") is not None else "removed"
        before = f"v{details['from']}" if details.get("from") is not None else "none"
        return f"{details.get('alias')}: {before} -> {to} ({details.get('cause')})"
    if entry["action"] == "policy.changed":
        return f"policy: {(details.get('from') or {}).get('mode')} -> {(details.get('to') or {}).get('mode')}"
    if entry["action"] == "traffic.changed":
        return f"traffic: {traffic.describe(details.get('from'))} -> {traffic.describe(details.get('to'))}"
    shown = ", ".join(f"{k}={v}" for k, v in details.items())
    return f"{entry['action']} {shown}".strip()


def with_reason(path: str, reason: str | None) -> str:
    return f"{path}?{urlencode({'reason': reason})}" if reason else path


def show_version(detail: dict[str, Any]) -> None:
    lineage, card = detail["lineage"], detail["card"]
    promotion = detail.get("promotion") or {}
    render.fields(
        [
            ("model", f"{detail['model']} v{detail['version']}"),
            ("aliases", detail["aliases"] or "-"),
            ("dataset", f"{lineage['dataset']} v{lineage['dataset_version']}"),
            ("estimator", lineage["estimator"]),
            ("params", lineage.get("params") or "-"),
            ("job", lineage["job_id"]),
            ("metrics", detail["metrics"]),
            ("promotion", f"{promotion['alias']} on {promotion['metric']}" if promotion else "-"),
            ("task / target", f"{card['task']} / {card['target']}"),
            ("features", [f"{f['name']} ({f['type']})" for f in card["features"]]),
            ("classes", card.get("classes") or "-"),
            ("artifact sha256", detail["artifact"]["sha256"]),
            ("compiled (ONNX)", compiled(detail.get("onnx"))),
            ("created", render.when(detail["created_at"])),
        ]
    )


def compiled(onnx: dict[str, Any] | None) -> str:
    """Whether the version has a checked ONNX file, and why not when it has none."""
    if not onnx:
        return "no: registered before models were compiled"
    check = onnx.get("check") or {}
    if onnx.get("artifact"):
        difference = check.get("max_difference")
        shown = f"{difference:.2g}" if isinstance(difference, int | float) else "-"
        return f"yes: checked against scikit-learn on {check.get('rows')} rows, largest difference {shown}"
    return f"no: {check.get('reason') or 'no reason recorded'}"


def moved(answer: dict[str, Any]) -> str:
    previous = f"v{answer['previous']}" if answer.get("previous") is not None else "none"
    return f"{answer['model']}: {answer['alias']} -> v{answer['version']} (was {previous})"


@app.command("promote")
@handled
def promote_command(
    ctx: typer.Context,
    name: str,
    version: int,
    alias: Annotated[str, typer.Option(help="The alias to point at the version.")] = "champion",
    reason: Reason = None,
    json: Json = False,
) -> None:
    """Points an alias (champion by default) at a version: inference serves it at once."""
    answer = gateway(ctx).put(with_reason(f"/api/models/{q(name)}/aliases/{q(alias)}", reason), {"version": version})
    if json:
        render.print_json(answer)
    else:
        render.out.print(moved(answer), markup=False)


@app.command("rollback")
@handled
def rollback_command(ctx: typer.Context, name: str, reason: Reason = None, json: Json = False) -> None:
    """Moves champion back to the version it held before the current one."""
    answer = gateway(ctx).post(with_reason(f"/api/models/{q(name)}/rollback", reason))
    if json:
        render.print_json(answer)
    else:
        render.out.print(moved(answer), markup=False)


app.command("traffic")(traffic.traffic_command)


@app.command("monitor")
@handled
def monitor_command(
    ctx: typer.Context,
    name: str,
    check: Annotated[bool, typer.Option("--check", help="Run a drift check first (an admin key).")] = False,
    json: Json = False,
) -> None:
    """A model's monitoring: live metrics per version (window and today), the last drift report,
    the policy and the latest actions."""
    gw = gateway(ctx)
    result = gw.post(f"/api/models/{q(name)}/monitoring/check") if check else None
    answer = gw.get(f"/api/models/{q(name)}/monitoring")
    if json:  # the monitoring answer, after the check when asked: its report is in it
        render.print_json(answer)
        return
    if result is not None:
        render.out.print(checked(result), markup=False)
    live = answer.get("live") or {}
    if not (
        answer["policy"] or answer["reports"] or answer["checks"] or live.get("pairs") or live.get("held_predictions")
    ):
        render.out.print(
            f"{name}: not monitored yet. Predictions are captured as they are made; send their actual values "
            f"(POST /api/models/{name}/feedback) for live metrics, and set a policy "
            f"(PUT /api/models/{name}/monitoring) or run a check: daprml models monitor {name} --check",
            markup=False,
        )
        return
    render.fields(policy_fields(answer))
    live_table(live)
    for report in last_reports(answer["reports"]):
        drift_table(report)
    actions = [(render.when(a["at"]), f"v{a['version']}", a["action"], a["reason"]) for a in answer["actions"][:10]]
    if actions:
        render.table("latest actions", ["when", "version", "action", "why"], actions)


def checked(result: dict[str, Any]) -> str:
    drifted = [f"v{r['version']}: {', '.join(r['drifted'])}" for r in result["reports"] if r["drifted"]]
    skipped = [f"v{s['version']} skipped ({s['reason']})" for s in result["skipped"]]
    found = f"drifted {'; '.join(drifted)}" if drifted else "nothing drifted"
    return "; ".join([f"check {result['check_id']}: {result['rows_read']} rows read", found, *skipped])


def policy_fields(answer: dict[str, Any]) -> list[tuple[str, Any]]:
    policy = answer["policy"]
    if policy is None:
        return [("model", answer["model"]), ("policy", "none: checks run only when asked, with the defaults")]
    rows, hours = policy.get("window_rows"), policy.get("window_hours")
    window = [f"{rows} rows" if rows else "", f"{hours:g} h" if hours else ""]
    return [
        ("model", answer["model"]),
        ("schedule", f"{policy['schedule']} (job {answer.get('job')})" if policy["schedule"] else "only when asked"),
        ("window", ", ".join(w for w in window if w) or "-"),
        (
            "drift",
            f"PSI > {policy['drift_threshold']:g}, missing +{policy['missing_rise']:g}, min {policy['min_rows']} rows",
        ),
        ("on drift", policy["on_drift"]),
        ("on accuracy drop", f"{policy['on_accuracy_drop']} (more than {policy['accuracy_drop']:g} below holdout)"),
        ("changed", f"{render.when(answer.get('changed_at'))} by {answer.get('changed_by') or '-'}"),
    ]


def measured(metric: dict[str, Any] | None) -> str:
    """A live metric and the pairs it rests on: a value over 3 pairs is noise."""
    return f"{render.cell(metric['value'])} ({metric['count']})" if metric else "-"


def live_table(live: dict[str, Any]) -> None:
    versions = live.get("versions") or []
    if not versions:
        render.out.print("live metrics: none yet (no feedback joined with a captured prediction)", markup=False)
        return
    names = sorted({n for v in versions for n in v["window"]["metrics"]})
    primary = live.get("primary") or "-"
    today = datetime.now(UTC).date().isoformat()
    rows = []
    for v in versions:
        day = next((d for d in v["daily"] if d["day"] == today), None)
        window = [measured(v["window"]["metrics"].get(n)) for n in names]
        rows.append((f"v{v['version']}", v["window"]["count"], *window, measured(day and day["metrics"].get(primary))))
    settings = live.get("settings") or {}
    hours = render.cell(settings.get("window_hours"))
    title = f"live metrics, value (pairs): last {settings.get('window_pairs')} pairs of {hours} h"
    render.table(title, ["version", "pairs", *names, f"{primary} today"], rows)
    if live.get("pending") or live.get("truncated"):
        truncated = "; older pairs let go (truncated)" if live.get("truncated") else ""
        render.out.print(f"{live.get('pending', 0)} actuals wait for their prediction{truncated}", markup=False)


def last_reports(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reports of the latest check (one per version it read)."""
    if not reports:
        return []
    latest = max(r["at"] for r in reports)
    return [r for r in reports if r["at"] == latest]


def drift_table(report: dict[str, Any]) -> None:
    features = list(report["features"].items()) + ([("output", report["output"])] if report.get("output") else [])
    rows = [
        (name, "too few rows" if f["psi"] is None else f["psi"], f["missing_share"], f["unseen_share"], f["drifted"])
        for name, f in features
    ]
    title = (
        f"drift of v{report['version']}: check {report['check_id']} at {render.when(report['at'])}, "
        f"{report['rows']} rows, threshold {report['threshold']:g}"
    )
    render.table(title, ["feature", "psi", "missing", "unseen", "drifted"], rows)

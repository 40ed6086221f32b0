"""daprml models list | show | history | promote | rollback"""

from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from services.cli import render
from services.cli.base import Json, gateway, handled, new_group
from services.cli.client import q
from services.cli.datasets import all_pages

app = new_group("Registered models: versions, metrics, aliases, their history, promotion and rollback.")
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

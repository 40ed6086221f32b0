"""daprml models list | show | promote | rollback"""

from typing import Annotated, Any

import typer

from services.cli import render
from services.cli.base import Json, gateway, handled, new_group
from services.cli.client import q
from services.cli.datasets import all_pages

app = new_group("Registered models: versions, metrics, aliases, promotion and rollback.")


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
    history = [(render.when(h["at"]), h["alias"], h["from"], h["to"], h["reason"]) for h in info["history"][-10:]]
    if history:
        render.table("alias history (latest 10)", ["when", "alias", "from", "to", "reason"], history)


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
    json: Json = False,
) -> None:
    """Points an alias (champion by default) at a version: inference serves it at once."""
    answer = gateway(ctx).put(f"/api/models/{q(name)}/aliases/{q(alias)}", {"version": version})
    if json:
        render.print_json(answer)
    else:
        render.out.print(moved(answer), markup=False)


@app.command("rollback")
@handled
def rollback_command(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Moves champion back to the version it held before the current one."""
    answer = gateway(ctx).post(f"/api/models/{q(name)}/rollback")
    if json:
        render.print_json(answer)
    else:
        render.out.print(moved(answer), markup=False)

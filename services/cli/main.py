"""The daprml app: global options, the command groups, predict and status."""

from pathlib import Path
from typing import Annotated

import typer

from services.cli import datasets, jobs, models, predict, render, rollouts, top, trace
from services.cli.base import Json, Options, gateway, handled
from services.cli.client import DEFAULT_URL, REFUSED, USAGE, CliError

app = typer.Typer(
    help="The daprml client: datasets, training, models and predictions through the gateway's public API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(datasets.app, name="datasets")
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(rollouts.app, name="rollouts")
app.command("train")(jobs.train_command)
app.command("top")(top.top_command)
app.command("trace")(trace.trace_command)


@app.callback()
def options(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(envvar="DAPRML_URL", help=f"The gateway (default: {DEFAULT_URL}).", show_default=False)
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            envvar="DAPRML_API_KEY", help="API key (default: the file .data/admin-key, if any).", show_default=False
        ),
    ] = None,
) -> None:
    ctx.obj = Options(url, key)


@app.command("predict")
@handled
def predict_command(
    ctx: typer.Context,
    model: str,
    file: Annotated[Path, typer.Option("--file", "-f", help="The rows: a .csv, or a .json list of records.")],
    version: Annotated[int | None, typer.Option(help="A version number (default: the champion).", min=1)] = None,
    alias: Annotated[str | None, typer.Option(help="An alias, such as challenger.")] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Class probabilities too (classifiers).")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write all rows to a .csv or .json file.")
    ] = None,
    head: Annotated[int, typer.Option(help="Rows shown in the table.", min=1)] = 50,
    json: Json = False,
) -> None:
    """Predictions of a model for the rows of a file, as a table (or a file with --output)."""
    if version is not None and alias is not None:
        raise CliError("give --version or --alias, not both", USAGE)
    if output is not None and output.suffix.lower() not in (".csv", ".json"):
        raise CliError(f"{output}: --output takes a .csv or .json file", USAGE)
    rows = predict.read_rows(file)
    answer = predict.predict(gateway(ctx), model, rows, version, alias)
    if json:
        render.print_json(answer)
        return
    for warning in answer.get("warnings", []):  # the model contract's: missing, unseen, far out
        render.err.print(f"warning: {warning['message']}", markup=False)
    lines = predict.joined(rows, answer, proba)
    if output is not None:
        predict.write(output, lines)
        render.out.print(f"{model} v{answer['version']}: {len(lines)} predictions written to {output}", markup=False)
        return
    columns = list(dict.fromkeys(k for line in lines[:head] for k in line))
    shown = [[line.get(c) for c in columns] for line in lines[:head]]
    render.table(f"{model} v{answer['version']}", columns, shown)
    if len(lines) > head:
        render.out.print(
            f"... {len(lines) - head} more rows (--head N to see more, --output FILE for all)", markup=False
        )


@app.command("status")
@handled
def status_command(ctx: typer.Context, json: Json = False) -> None:
    """Whether each service answers through Dapr (exit 1 if one does not)."""
    report = gateway(ctx).get("/api/status")
    if json:
        render.print_json(report)
    else:
        rows = [
            ("ok" if s["reachable"] else "DOWN", s["service"], s["app_id"], s.get("runtime_version"), s.get("error"))
            for s in report["services"]
        ]
        render.table(None, ["", "service", "app id", "daprd", "error"], rows)
    if not report["ok"]:
        down = ", ".join(s["service"] for s in report["services"] if not s["reachable"])
        raise CliError(f"not every service answers: {down}", REFUSED)


def main() -> None:
    app(prog_name="daprml")

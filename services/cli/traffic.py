"""daprml models traffic: a model's traffic table (canary versions and their percents, shadows),
shown, set or cleared through GET, PUT and DELETE /api/models/{name}/traffic."""

from typing import Annotated, Any

import typer

from services.cli import render
from services.cli.base import Json, gateway, handled
from services.cli.client import USAGE, CliError, q


@handled
def traffic_command(
    ctx: typer.Context,
    name: str,
    canary: Annotated[
        list[str] | None,
        typer.Option(
            "--canary",
            metavar="V=PERCENT",
            help="A canary: version V serves PERCENT of the requests for the champion (repeat for more).",
        ),
    ] = None,
    shadow: Annotated[
        list[str] | None,
        typer.Option(
            "--shadow",
            metavar="V=PERCENT",
            help="A shadow: version V gets a copy of PERCENT of the champion's requests (repeat for more).",
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Empty the table: the champion serves everything.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, kept in the model's history (models history NAME).")] = None,
    json: Json = False,
) -> None:
    """A model's traffic table; with --canary/--shadow it sets the whole table (an admin key),
    with --clear it empties it. A request naming a version or an alias bypasses the table."""
    setting = bool(canary or shadow)
    if setting and clear:
        raise CliError("give --canary/--shadow to set the table, or --clear to empty it, not both", USAGE)
    if reason is not None and not (setting or clear):
        raise CliError("--reason goes with a change: --canary/--shadow or --clear", USAGE)
    gw = gateway(ctx)
    path = f"/api/models/{q(name)}/traffic"
    params = {"reason": reason} if reason else {}
    if setting:
        body = {"canary": shares(canary or [], "--canary"), "shadows": shares(shadow or [], "--shadow")}
        answer = gw.request("PUT", path, json=body, params=params).json()
    elif clear:
        answer = gw.request("DELETE", path, params=params).json()
    else:
        answer = gw.get(path)
    if json:
        render.print_json(answer)
    else:
        show(answer)


def shares(given: list[str], option: str) -> list[dict[str, Any]]:
    """`V=PERCENT` options as the table's entries ("v2=30" and "2=30%" too)."""
    out = []
    for item in given:
        bad = CliError(f"{option} {item!r}: write VERSION=PERCENT, such as {option} 2=30", USAGE)
        version, sep, percent = item.partition("=")
        if not sep:
            raise bad
        try:
            out.append(
                {"version": int(version.strip().removeprefix("v")), "percent": float(percent.strip().removesuffix("%"))}
            )
        except ValueError:
            raise bad from None
    return out


def listed(entries: list[dict[str, Any]]) -> str:
    return ", ".join(f"v{e['version']} {e['percent']:g}%" for e in entries) or "none"


def describe(table: dict[str, Any] | None) -> str:
    """A table in a few words, for the history ("canary v2 30%; shadows v3 20%")."""
    table = table or {}
    canary, shadows = table.get("canary") or [], table.get("shadows") or []
    if not canary and not shadows:
        return "empty"
    return f"canary {listed(canary)}; shadows {listed(shadows)}"


def show(answer: dict[str, Any]) -> None:
    table = answer["traffic"]
    champion = answer.get("champion")
    served = f"v{champion}" if champion is not None else "none"
    render.fields(
        [
            ("model", answer["model"]),
            ("champion", f"{served}: {answer['champion_percent']:g}% of its requests"),
            ("canaries", listed(table["canary"])),
            ("shadows", f"{listed(table['shadows'])} (copies, off the request path)" if table["shadows"] else "none"),
            ("changed", f"{render.when(answer.get('changed_at'))} by {answer.get('changed_by') or '-'}"),
        ]
    )

"""daprml top: each service's and each model's traffic now (request rate, p50, p99, error
rate) and its replicas, from the gateway's /api/operations endpoints, refreshed until Ctrl-C."""

import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from services.cli import render
from services.cli.base import Json, gateway, handled
from services.cli.client import UNREACHABLE, CliError, Gateway


class Window(StrEnum):
    """The rate's window: the gateway averages over a minute for 15m and 1h, 6 minutes for 6h."""

    MINUTES_15 = "15m"
    HOUR_1 = "1h"
    HOURS_6 = "6h"


def snapshot(gw: Gateway, window: Window) -> dict[str, Any]:
    """The three answers top shows, as the gateway gave them."""
    return {
        "services": gw.get("/api/operations/services", window=window.value),
        "models": gw.get("/api/operations/models", window=window.value),
        "replicas": gw.get("/api/operations/replicas"),
    }


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}/s"


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    # Seconds past one: "1.75 s", not "1.75e+03 ms" (the monitor's held deliveries take that long).
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1000:.3g} ms"


def share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def up_of(items: list[dict[str, Any]]) -> str:
    """How many are up of how many ('1/2'), or '-' when there is nothing to count."""
    return f"{sum(1 for i in items if i['up'])}/{len(items)}" if items else "-"


def show(data: dict[str, Any]) -> None:
    services, models, replicas = data["services"], data["models"], data["replicas"]
    by_service = {s["service"]: s for s in replicas["services"]}
    traffic = {s["service"]: s["current"] for s in services.get("services", [])}
    names = [s["service"] for s in services.get("services", [])]
    names += [name for name in by_service if name not in traffic]
    rows = []
    for name in names:
        now = traffic.get(name, {})
        state = by_service.get(name, {})
        sidecar = [t for t in state.get("targets", []) if t["kind"] == "daprd"]
        rows.append(
            (
                name,
                rate(now.get("rate")),
                ms(now.get("p50_s")),
                ms(now.get("p99_s")),
                share(now.get("error_share")),
                "ok" if state.get("reachable") else "DOWN",
                up_of(state.get("instances", [])),
                up_of(sidecar),
            )
        )
    render.table(
        f"services (last {services['window']})",
        # dapr: answers through its sidecar; replicas up by their heartbeats; sidecars: daprd scraped.
        ["service", "req/s", "p50", "p99", "errors", "dapr", "replicas", "sidecars"],
        rows,
    )
    if models.get("available"):
        model_rows = [
            (
                m["model"],
                m["version"],
                rate(m["current"]["rate"]),
                ms(m["current"]["p50_s"]),
                ms(m["current"]["p99_s"]),
                share(m["current"]["error_share"]),
            )
            for m in models["models"]
        ]
        if model_rows:
            render.table("models", ["model", "version", "req/s", "p50", "p99", "errors"], model_rows)
        else:
            render.out.print("models: no predictions in this window", markup=False)
    for report in (services, models):
        if not report.get("available"):
            render.out.print(f"metrics: {report.get('reason')}", markup=False)
            break


@handled
def top_command(
    ctx: typer.Context,
    interval: Annotated[float, typer.Option(help="Seconds between two refreshes.", min=1, max=3600)] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Print the numbers once and exit.")] = False,
    window: Annotated[
        Window, typer.Option(help="The window the gateway reads the latest values in.")
    ] = Window.MINUTES_15,
    json: Json = False,
) -> None:
    """Each service's and model's request rate, p50 and p99 latency and error rate, and the
    replicas up, refreshed every --interval seconds until Ctrl-C (--json and --once: once)."""
    gw = gateway(ctx)
    if json:
        render.print_json(snapshot(gw, window))
        return
    if once:
        show(snapshot(gw, window))
        return
    try:
        while True:
            try:
                data = snapshot(gw, window)
            except CliError as exc:
                if exc.code != UNREACHABLE:
                    raise
                data = None  # the gateway restarting: say so and try again at the next refresh
                problem = str(exc)
            render.out.clear()
            render.out.print(f"daprml top: {gw.url}, every {interval:g} s (Ctrl-C to stop)", markup=False)
            if data is None:
                render.out.print(f"{time.strftime('%H:%M:%S')} {problem}", markup=False)
            else:
                show(data)
            time.sleep(interval)
    except KeyboardInterrupt:
        return  # the way to stop it

"""daprml trace ID: one trace as a text waterfall (the console's trace view in the terminal),
from the gateway's GET /api/operations/traces/{id}: a line per span in start order, indented
under its parent, with a bar placed by its start and sized by its duration."""

import re
from typing import Annotated, Any

import typer
from rich.text import Text

from services.cli import render
from services.cli.base import Json, gateway, handled
from services.cli.client import USAGE, CliError, q

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
BAR = 30  # characters the whole trace spans


def bar(start_ms: float, duration_ms: float, total_ms: float, width: int = BAR) -> str:
    """The span's place in the trace as `width` characters: blanks, then at least one block."""
    total = max(total_ms, 0.001)
    begin = min(width - 1, int(start_ms / total * width))
    length = max(1, min(width - begin, round(duration_ms / total * width)))
    return " " * begin + "█" * length + " " * (width - begin - length)


def ms(value: float) -> str:
    return f"{value / 1000:.3g} s" if value >= 1000 else f"{value:.3g} ms"


def show(trace: dict[str, Any]) -> None:
    if not trace.get("available"):
        render.out.print(f"traces: {trace.get('reason')}", markup=False)
        return
    total = trace["duration_ms"]
    spans = trace["spans"]
    failed = sum(1 for s in spans if s["error"])
    render.out.print(
        f"trace {trace['trace_id']}: {ms(total)}, {len(spans)} spans"
        + (f", {failed} failed" if failed else "")
        + (" (the first ones shown)" if trace.get("truncated") else ""),
        markup=False,
    )
    # Fixed-width columns first, the service and operation last: a narrow terminal cuts the end
    # of a long operation, not the bars.
    header = f"{'start':>9} {'took':>9} {'waterfall':<{BAR}}  service  operation (! failed)"
    render.out.print(Text(header), no_wrap=True, overflow="ellipsis")
    for s in spans:
        line = (
            f"{ms(s['start_ms']):>9} {ms(s['duration_ms']):>9} {bar(s['start_ms'], s['duration_ms'], total)}  "
            f"{'  ' * min(s['depth'], 12)}{s['service']}  {'! ' if s['error'] else ''}{s['operation']}"
        )
        render.out.print(Text(line), no_wrap=True, overflow="ellipsis")


@handled
def trace_command(
    ctx: typer.Context,
    trace_id: Annotated[str, typer.Argument(help="The trace's id: 32 hex digits (the traceparent's second part).")],
    json: Json = False,
) -> None:
    """One trace's spans as a waterfall: which service did what, when and for how long."""
    trace_id = trace_id.strip().lower()
    if not TRACE_ID.match(trace_id):
        raise CliError(f"a trace id is 32 hex digits, not {trace_id!r}", USAGE)
    found = gateway(ctx).get(f"/api/operations/traces/{q(trace_id)}")
    if json:
        render.print_json(found)
    else:
        show(found)

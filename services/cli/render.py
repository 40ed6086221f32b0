"""What people see: tables, key-value panels and progress bars (rich), results on stdout,
progress and errors on stderr."""

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """The raw answer, for machines: plain JSON on stdout, no colours."""
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    shown = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    for i, name in enumerate(columns):
        # The first column names the row: never folded ("inferenc" / "e"), the others give way.
        shown.add_column(name, overflow="fold", no_wrap=i == 0)
    for row in rows:
        shown.add_row(*(Text(cell(v)) for v in row))
    out.print(shown)


def fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """Name: value lines, aligned."""
    items = list(pairs)
    width = max((len(k) for k, _ in items), default=0)
    for key, value in items:
        out.print(f"[bold]{escape(key):<{width}}[/]  {escape(cell(value))}")


def when(stamp: str | None) -> str:
    """An ISO 8601 time as 'YYYY-MM-DD HH:MM:SS' (UTC, as the services write it)."""
    return stamp[:19].replace("T", " ") if stamp else "-"


def bytes_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=err,
    )


def job_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=err,
    )

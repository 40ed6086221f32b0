"""What every command shares: the gateway it talks to, the --json option, and turning a
CliError into one line on stderr and its exit code."""

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ParamSpec

import typer

from services.cli import client

P = ParamSpec("P")

Json = Annotated[bool, typer.Option("--json", help="Print the raw JSON answer (for scripts).")]


@dataclass
class Options:
    url: str | None
    key: str | None


def gateway(ctx: typer.Context) -> client.Gateway:
    options = ctx.find_root().obj
    if not isinstance(options, Options):  # a command run without the app's callback (tests)
        options = Options(None, None)
    return client.connect(options.url, options.key)


def fail(message: str, code: int) -> typer.Exit:
    """Prints the one line (plain: no wrapping, no colour, whatever the terminal) and gives
    the exit to raise."""
    print(f"daprml: {message}", file=sys.stderr)
    return typer.Exit(code)


def handled(command: Callable[P, None]) -> Callable[P, None]:
    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except client.CliError as exc:
            raise fail(str(exc), exc.code) from None

    return run


def new_group(help: str) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

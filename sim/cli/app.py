"""The ``rescue-sim`` application: the typer app, its two consoles, the global options and
the console-script entry point. Commands register themselves on :data:`app` from their own
modules (``sim.cli.runs``, ``sim.cli.design``, ``sim.cli.fitting``, ``sim.cli.files``)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from sim.cli.guard import say_error, set_debug
from sim.errors import UserInputError
from sim.version import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Simulate a national roadside truck-rescue network.",
    pretty_exceptions_enable=False,
)
# Tables are wide: give them room when the output is a file or a pipe.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        out.print(f"rescue-sim {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="RESCUE_SIM_DEBUG",
            help="Show the full traceback of an error (also RESCUE_SIM_DEBUG=1).",
        ),
    ] = False,
) -> None:
    """Simulate a national roadside truck-rescue network."""
    set_debug(debug)


def _debug_first(args: list[str]) -> list[str]:
    """``--debug`` anywhere before a ``--`` is the global option: move it to the front."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug", *(a for k, a in enumerate(args) if a != "--debug" or k >= end)]


def _click_exceptions() -> Any:
    """The exceptions of the click typer runs on: its own copy in recent typer, else click's."""
    import typer.core

    module: Any = getattr(typer.core, "_click", None)
    if module is None:
        import click

        module = click
    return module.exceptions


def main() -> None:
    """Console-script entry point: every way of ending is one line and an exit code."""
    errors = _click_exceptions()
    no_args = getattr(errors, "NoArgsIsHelpError", ())
    # typer's own copy of click keeps Abort elsewhere (typer.Abort).
    abort = getattr(errors, "Abort", typer.Abort)
    try:
        code = app(args=_debug_first(sys.argv[1:]), standalone_mode=False)
    except no_args as exc:
        exc.show()
        code = exc.exit_code
    except errors.UsageError as exc:  # an unknown option, a value of the wrong type
        where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
        say_error(f"{where}{exc.format_message()}")
        code = 2
    except errors.ClickException as exc:
        say_error(exc.format_message())
        code = exc.exit_code
    except abort:
        err.print("interrupted: nothing was written")
        code = 130
    except UserInputError as exc:  # a user error raised outside a command's own handling
        say_error(str(exc))
        code = 2
    sys.exit(code if isinstance(code, int) else 0)

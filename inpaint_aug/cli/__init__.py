"""The ``inpaint-aug`` command line: a thin Typer layer over the library, one module a command.

Exit codes: 0 done, 1 a failure explained on one stderr line, 2 a usage error (a bad option),
130 stopped by Ctrl-C or SIGTERM (the same command continues the run).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from inpaint_aug.cli.common import MODEL_EPILOG
from inpaint_aug.cli.preview import preview_command
from inpaint_aug.cli.run import EPILOG as RUN_EPILOG
from inpaint_aug.cli.run import run_command
from inpaint_aug.cli.validate import validate_command
from inpaint_aug.version import __version__


class OneLineErrors(TyperGroup):
    """Usage errors (a bad choice, a missing option, a value of the wrong type) as one line.

    Typer draws them in a box under the usage; here they read as every other error does, one
    ``error:`` line on stderr naming the option, with exit code 2.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command; in standalone mode, print a usage error as one line and exit."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as err:
            if type(err).__name__ != "NoArgsIsHelpError":  # the help is printed already
                typer.echo(f"error: {usage_line(err)}", err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_line(err: typer.TyperException) -> str:
    """The error's message on one line, and where to read the command's options."""
    message = " ".join(err.format_message().replace("Value error, ", "").split())
    ctx = getattr(err, "ctx", None)
    return f"{message} (see '{ctx.command_path} --help')" if ctx is not None else message


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    help="Redraw labelled objects of a COCO dataset with Stable Diffusion inpainting, "
    "keeping every label true.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"inpaint-aug {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Redraw labelled objects of a COCO dataset with Stable Diffusion inpainting."""


app.command("run", epilog=RUN_EPILOG)(run_command)
app.command("validate")(validate_command)
app.command("preview", epilog=MODEL_EPILOG)(preview_command)

"""The ``inpaint-aug`` command line: a thin Typer layer over the library, one module a command.

Exit codes: 0 done, 1 a failure explained on one stderr line, 2 a usage error (a bad option),
130 stopped by Ctrl-C or SIGTERM (the same command continues the run).
"""

from __future__ import annotations

from typing import Annotated

import typer

from inpaint_aug.cli.common import MODEL_EPILOG
from inpaint_aug.cli.preview import preview_command
from inpaint_aug.cli.run import EPILOG as RUN_EPILOG
from inpaint_aug.cli.run import run_command
from inpaint_aug.cli.validate import validate_command
from inpaint_aug.version import __version__

app = typer.Typer(
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

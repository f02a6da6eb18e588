"""What the commands share: option declarations (declared once), error mapping, output helpers.

Options carry no choices or ranges of their own: choices are the ``str`` Enums of
:mod:`inpaint_aug.options` and every value is checked by the library when the options object
is built; :func:`library_errors` maps its errors to exit codes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from inpaint_aug.choices import Device, Mode, Region
from inpaint_aug.errors import FatalError, Interrupted, OptionsError
from inpaint_aug.options import (
    DEFAULT_CONTROLNET,
    DEFAULT_CONTROLNET_SDXL,
    DEFAULT_MODEL,
    PlanSettings,
    RunOptions,
)

PLAN = PlanSettings()
RUN: dict[str, Any] = {f.name: f.default for f in fields(RunOptions)}
INPUT, MODEL, QUALITY, SPEED, OUTPUT = "Input", "Model", "Quality", "Speed", "Output"
MODEL_EPILOG = f"Default model: {DEFAULT_MODEL}"
CONTROL_EPILOG = (
    f"ControlNet of --control canny: {DEFAULT_CONTROLNET} (SD 1.5), {DEFAULT_CONTROLNET_SDXL} "
    "(SDXL)"
)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def library_errors() -> Iterator[None]:
    """Exit codes for the library's errors: 2 a bad option, 130 a signal, 1 any other failure."""
    try:
        yield
    except OptionsError as err:
        raise fail(str(err), code=2) from None
    except Interrupted as err:
        raise fail(str(err), code=130) from None
    except FatalError as err:
        raise fail(str(err)) from None


def setup_logging(quiet: bool) -> None:
    """Log warnings (skips) to stderr, or only errors with ``--quiet``.

    huggingface_hub gives its logger a handler of its own that also propagates to the root
    logger (each line twice) and ignores the root level (``--quiet``); here its lines go through
    the root handler only.
    """
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(message)s")
    import huggingface_hub.utils.logging  # noqa: F401 - adds its handler now, to remove it

    hub = logging.getLogger("huggingface_hub")
    for handler in list(hub.handlers):
        hub.removeHandler(handler)
    hub.setLevel(logging.NOTSET)
    hub.propagate = True


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned plain-text columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _opt(text: str, panel: str | None = None, **kw: Any) -> Any:
    return typer.Option(help=text, rich_help_panel=panel, **kw)


Prompts = Annotated[Path, _opt("Prompts YAML: per-class prompt templates.", INPUT)]
Images = Annotated[Path | None, _opt("Image folder \\[default: found beside the JSON].", INPUT)]
Limit = Annotated[int | None, _opt("Only the first N source images.", INPUT)]
Model = Annotated[
    str,
    _opt(
        "Hub id, local diffusers folder, .safetensors file, or 'tiny-random' (offline noise "
        "model for checking the plumbing). \\[default: see the end of --help]",
        MODEL,
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    str,
    _opt(
        "Where the model runs: auto (cuda > mps > cpu), cpu, mps, cuda (the current GPU) or "
        "cuda:N (GPU N).",
        MODEL,
        metavar="|".join([*(d.value for d in Device), "cuda:N"]),
    ),
]
Steps = Annotated[int, _opt("Denoising steps.", QUALITY)]
Guidance = Annotated[float, _opt("Classifier-free guidance scale.", QUALITY)]
Strength = Annotated[float, _opt("Inpainting strength, in (0, 1].", QUALITY)]
Resolution = Annotated[
    int | None,
    _opt(
        "Model crop size, a multiple of 8 \\[default: the model's, 512 SD 1.5, 1024 SDXL/FLUX].",
        QUALITY,
    ),
]
Seed = Annotated[int, _opt("Base seed; each edit derives its own.", QUALITY)]
RegionOpt = Annotated[Region, _opt("What the model may repaint (auto: mask, else box).", INPUT)]
MinSize = Annotated[int, _opt("Skip objects whose box is under N pixels on a side.", INPUT)]
Dilate = Annotated[int, _opt("Grow each region by this many pixels.", QUALITY)]
ModeOpt = Annotated[
    Mode, _opt("object: redraw each object; background: keep every object, redraw the rest.", INPUT)
]
KeepOutline = Annotated[
    int, _opt("Keep a band of N source pixels along each object's outline (0: off).", QUALITY)
]
Balance = Annotated[
    int | None,
    _opt("Redraw every class at least N times, adding copies of its images.", OUTPUT),
]
MaxCopies = Annotated[int, _opt("The most copies of one image --balance may make, in all.", OUTPUT)]
MaxPer = Annotated[int | None, _opt("Edit at most N objects per image (largest first).", INPUT)]
BatchSize = Annotated[int, _opt("Crops per model call.", SPEED)]

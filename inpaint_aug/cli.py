"""The ``inpaint-aug`` command line: a thin Typer layer over :mod:`inpaint_aug.runner`.

Exit codes: 0 done, 1 a failure explained on one stderr line, 2 a usage error.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated  # noqa: UP035 - typer reads Optional on Python 3.10

import typer

from . import __version__
from .backend import DEFAULT_MODEL
from .errors import FatalError
from .plan import PlanSettings
from .runner import RunOptions, RunReport, run

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Redraw labelled objects of a COCO dataset with Stable Diffusion inpainting, "
    "keeping every label true.",
)
_DEF = PlanSettings()


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


def fail(message: str) -> typer.Exit:
    """Print one line on stderr and return the exit to raise (code 1)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    if value not in allowed:
        raise typer.BadParameter(
            f"{value!r}; expected one of {', '.join(allowed)}", param_hint=flag
        )
    return value


@app.command("run")
def run_command(
    coco_json: Annotated[Path, typer.Argument(help="The COCO annotations JSON to augment.")],
    prompts: Annotated[Path, typer.Option(help="Prompts YAML: per-class prompt templates.")],
    out: Annotated[Path, typer.Option(help="Output folder (new or empty).")] = Path("augmented"),
    images: Annotated[Path | None, typer.Option(help="Image folder (found automatically).")] = None,  # noqa: E501
    model: Annotated[
        str,
        typer.Option(
            help="Hub id, local diffusers folder, .safetensors file, "
            "or 'tiny-random' (offline noise model for checking the "
            "plumbing)."
        ),
    ] = DEFAULT_MODEL,
    device: Annotated[
        str, typer.Option(help="auto|cpu|cuda|mps (auto: cuda > mps > cpu).")
    ] = "auto",
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = _DEF.steps,
    guidance: Annotated[float, typer.Option(min=0.0, help="Guidance scale.")] = _DEF.guidance,
    strength: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Inpainting strength.")
    ] = _DEF.strength,  # noqa: E501
    resolution: Annotated[
        int, typer.Option(min=64, help="Model crop size, a multiple of 8.")
    ] = _DEF.resolution,  # noqa: E501
    batch_size: Annotated[int, typer.Option(min=1, help="Crops per model call.")] = 4,
    seed: Annotated[int, typer.Option(min=0, help="Base seed; each edit derives its own.")] = 0,
    copies: Annotated[int, typer.Option(min=1, help="Augmented variants per source image.")] = 1,
    region: Annotated[
        str, typer.Option(help="auto|mask|box: what the model may repaint.")
    ] = "auto",
    max_per_image: Annotated[
        int | None, typer.Option(min=1, help="Edit at most N objects per image (largest first).")
    ] = None,  # noqa: E501
    min_size: Annotated[
        int,
        typer.Option(
            min=0, help="Skip objects whose box is smaller than this many pixels on a side."
        ),
    ] = _DEF.min_size,  # noqa: E501
    dilate: Annotated[
        int, typer.Option(min=0, help="Grow each mask by this many pixels.")
    ] = _DEF.dilate,  # noqa: E501
    image_format: Annotated[
        str, typer.Option(help="auto|png|jpg (auto follows the input).")
    ] = "auto",  # noqa: E501
    limit: Annotated[
        int | None, typer.Option(min=1, help="Process only the first N source images.")
    ] = None,  # noqa: E501
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Augment COCO_JSON: redraw each eligible object and write a new COCO dataset to --out."""
    _choice(region, ("auto", "mask", "box"), "--region")
    _choice(device, ("auto", "cpu", "cuda", "mps"), "--device")
    _choice(image_format, ("auto", "png", "jpg"), "--image-format")
    if resolution % 8:
        raise typer.BadParameter(f"{resolution} is not a multiple of 8", param_hint="--resolution")
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(message)s")
    plan = PlanSettings(
        seed=seed,
        copies=copies,
        region=region,
        dilate=dilate,
        min_size=min_size,
        max_per_image=max_per_image,
        resolution=resolution,
        steps=steps,
        guidance=guidance,
        strength=strength,
    )
    options = RunOptions(
        coco=coco_json,
        prompts=prompts,
        out=out,
        images=images,
        model=model,
        device=device,
        batch_size=batch_size,
        image_format=image_format,
        limit=limit,
        resume=resume,
        plan=plan,
    )
    try:
        report = run(options)
    except FatalError as err:
        raise fail(str(err)) from None
    if not quiet:
        print_summary(report)


def print_summary(report: RunReport) -> None:
    """The end-of-run summary: counts, skips by reason, timings."""
    per = report.seconds_model / report.objects_edited if report.objects_edited else 0.0
    typer.echo(
        f"wrote {report.images_written} images, {report.annotations_written} annotations, "
        f"{report.objects_edited} objects redrawn -> {report.out / 'annotations.json'}"
    )
    for key, count in report.skip_counts().items():
        typer.echo(f"  skipped {key}: {count}")
    typer.echo(
        f"time: {report.seconds_total:.1f}s total, model load {report.seconds_load:.1f}s, "
        f"{per:.2f}s model time per object; details in {report.out / 'run.json'}"
    )


def entry() -> None:  # pragma: no cover - console entry point used by `python -m`
    """Run the app; used by ``python -m inpaint_aug``."""
    sys.exit(app())

"""The ``inpaint-aug preview`` command: a contact sheet (and page) from a run or a sample.

Given a finished run's ``--out`` folder it shows edits that were made; given a COCO JSON and a
prompts file it redraws a few objects in memory first (see :func:`.preview.sample_items`).

Example:
    inpaint-aug preview augmented/ --n 8 --html augmented/preview.html
    inpaint-aug preview datasets/shapes/annotations.json --prompts prompts.yaml --n 4
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from inpaint_aug.errors import FatalError
from inpaint_aug.inspect.preview import PreviewItem, items_from_run, sample_items
from inpaint_aug.inspect.sheet import contact_sheet, write_html
from inpaint_aug.pipeline.backend import DEFAULT_MODEL
from inpaint_aug.pipeline.plan import PlanSettings
from inpaint_aug.pipeline.run import RunOptions

_DEF = PlanSettings()
_Path = Path | None
SHEET_HELP = "Contact sheet PNG [default: RUN_DIR/preview.png; ./preview.png when sampling]"


def _gather(target: Path, options: RunOptions, n: int) -> tuple[list[PreviewItem], Path]:
    """Items and the default sheet path: from a run folder, or sampled from a COCO JSON."""
    if target.is_dir():
        if not (target / "run.json").is_file():
            raise FatalError(f"{target}: no run.json here; expected a finished inpaint-aug run")
        return items_from_run(target, n), target / "preview.png"
    if not target.is_file():
        raise FatalError(f"{target}: no such file or folder")
    if not str(options.prompts):
        raise typer.BadParameter(
            "a prompts file is needed to sample a COCO JSON", param_hint="--prompts"
        )
    if options.plan.region not in ("auto", "mask", "box"):
        raise typer.BadParameter("expected auto, mask or box", param_hint="--region")
    if options.device not in ("auto", "cpu", "cuda", "mps"):
        raise typer.BadParameter("expected auto, cpu, cuda or mps", param_hint="--device")
    if options.plan.resolution % 8:
        raise typer.BadParameter("not a multiple of 8", param_hint="--resolution")
    return sample_items(options, n), Path("preview.png")


def _preview(target: Path, options: RunOptions, n: int, sheet: _Path, page: _Path) -> str:
    """Gather items, write the sheet (and the page); say what was written."""
    items, default = _gather(target, options, n)
    if not items:
        raise FatalError(f"{target}: nothing to preview (no object was or can be redrawn)")
    contact_sheet(items).save(sheet or default, format="PNG")
    if page is not None:
        write_html(items, page)
    return f"{len(items)} edits -> {sheet or default}" + (f" and {page}" if page else "")


def preview_command(
    target: Annotated[Path, typer.Argument(help="A finished run's --out folder, or a COCO JSON.")],
    prompts: Annotated[_Path, typer.Option(help="Prompts YAML (to sample a COCO JSON).")] = None,
    n: Annotated[int, typer.Option(min=1, help="Edits to show, spread across classes.")] = 12,
    sheet: Annotated[_Path, typer.Option(help=SHEET_HELP)] = None,
    html: Annotated[_Path, typer.Option(help="Also write a static HTML page here.")] = None,
    images: Annotated[_Path, typer.Option(help="Image folder (found automatically).")] = None,
    model: Annotated[str, typer.Option(help="As for run (sample mode).")] = DEFAULT_MODEL,
    device: Annotated[str, typer.Option(help="auto|cpu|cuda|mps.")] = "auto",
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = _DEF.steps,
    guidance: Annotated[float, typer.Option(min=0.0, help="Guidance scale.")] = _DEF.guidance,
    strength: Annotated[float, typer.Option(min=0.01, max=1.0)] = _DEF.strength,
    resolution: Annotated[int, typer.Option(min=64, help="Multiple of 8.")] = _DEF.resolution,
    batch_size: Annotated[int, typer.Option(min=1, help="Crops per model call.")] = 4,
    seed: Annotated[int, typer.Option(min=0, help="Base seed, as for run.")] = 0,
    region: Annotated[str, typer.Option(help="auto|mask|box.")] = "auto",
    min_size: Annotated[int, typer.Option(min=0, help="Skip smaller objects.")] = _DEF.min_size,
    dilate: Annotated[int, typer.Option(min=0, help="Grow masks by N px.")] = _DEF.dilate,
    limit: Annotated[int | None, typer.Option(min=1, help="First N images only.")] = None,
) -> None:
    """Show edits as before | region | after: from a finished run, or sampled from a COCO JSON.

    Example:
        inpaint-aug preview augmented/ --n 8 --html augmented/preview.html
    """
    plan = PlanSettings(seed=seed, region=region, dilate=dilate, min_size=min_size, steps=steps)
    plan = replace(plan, resolution=resolution, guidance=guidance, strength=strength)
    options = RunOptions(target, prompts or "", images=images, model=model, device=device)
    options = replace(options, batch_size=batch_size, limit=limit, plan=plan)
    try:
        written = _preview(target, options, n, sheet, html)
    except (FatalError, OSError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote a preview of {written}")

"""The ``inpaint-aug preview`` command: a contact sheet (and page) from a run or a sample.

Given a run's ``--out`` folder (finished, or interrupted: the images done so far) it shows
edits that were made; given a COCO JSON and a prompts file it redraws a few objects in memory
first (see :func:`inpaint_aug.inspect.preview.sample_items`).

Example:
    inpaint-aug preview augmented/ --n 8 --html augmented/preview.html
    inpaint-aug preview datasets/shapes/annotations.json --prompts prompts.yaml --n 4
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated

import typer

from inpaint_aug.cli.common import (
    PLAN,
    RUN,
    BatchSize,
    DeviceOpt,
    Dilate,
    Guidance,
    Images,
    Limit,
    MinSize,
    Model,
    RegionOpt,
    Resolution,
    Seed,
    Steps,
    Strength,
    library_errors,
)
from inpaint_aug.errors import FatalError
from inpaint_aug.files import write_bytes
from inpaint_aug.inspect.preview import items_from_run, sample_items
from inpaint_aug.inspect.sheet import PreviewItem, contact_sheet, write_html
from inpaint_aug.options import PlanSettings, RunOptions

_Path = Path | None
SHEET_HELP = "Contact sheet PNG \\[default: RUN_DIR/preview.png; ./preview.png when sampling]"


def _gather(target: Path, options: RunOptions | None, n: int) -> tuple[list[PreviewItem], Path]:
    """Items and the default sheet path: from a run folder, or sampled from a COCO JSON."""
    if target.is_dir():
        return items_from_run(target, n), target / "preview.png"  # refuses a non-run folder
    if not target.is_file():
        raise FatalError(f"{target}: no such file or folder")
    if options is None:
        raise typer.BadParameter(
            "a prompts file is needed to sample a COCO JSON", param_hint="--prompts"
        )
    return sample_items(options, n), Path("preview.png")


def _write(items: list[PreviewItem], sheet: Path, page: _Path) -> None:
    buffer = io.BytesIO()
    contact_sheet(items).save(buffer, format="PNG")
    write_bytes(sheet, buffer.getvalue())
    if page is not None:
        write_html(items, page)


def preview_command(
    target: Annotated[
        Path,
        typer.Argument(
            help="A run's --out folder (finished or not), or a COCO JSON.",
            metavar="RUN_DIR|COCO_JSON",
        ),
    ],
    prompts: Annotated[_Path, typer.Option(help="Prompts YAML (to sample a COCO JSON).")] = None,
    n: Annotated[int, typer.Option(min=1, help="Edits to show, spread across classes.")] = 12,
    sheet: Annotated[_Path, typer.Option(help=SHEET_HELP)] = None,
    html: Annotated[_Path, typer.Option(help="Also write a static HTML page here.")] = None,
    images: Images = None,
    model: Model = RUN["model"],
    device: DeviceOpt = RUN["device"],
    steps: Steps = PLAN.steps,
    guidance: Guidance = PLAN.guidance,
    strength: Strength = PLAN.strength,
    resolution: Resolution = PLAN.resolution,
    batch_size: BatchSize = RUN["batch_size"],
    seed: Seed = PLAN.seed,
    region: RegionOpt = PLAN.region,
    min_size: MinSize = PLAN.min_size,
    dilate: Dilate = PLAN.dilate,
    limit: Limit = None,
) -> None:
    """Show edits as before | region | after: from a run, or sampled from a COCO JSON.

    Example:
        inpaint-aug preview augmented/ --n 8 --html augmented/preview.html
    """
    if prompts is not None and target.is_dir():
        raise typer.BadParameter(
            "only for sampling a COCO JSON; a run folder shows the edits it made",
            param_hint="--prompts",
        )
    with library_errors():
        options = None
        if not target.is_dir() and prompts is not None:
            plan = PlanSettings(
                seed=seed,
                region=region,
                dilate=dilate,
                min_size=min_size,
                steps=steps,
                resolution=resolution,
                guidance=guidance,
                strength=strength,
            )
            options = RunOptions(
                target,
                prompts,
                images=images,
                model=model,
                device=device,
                batch_size=batch_size,
                limit=limit,
                plan=plan,
            )
        items, default = _gather(target, options, n)
        if not items:
            raise FatalError(f"{target}: nothing to preview (no object was or can be redrawn)")
        _write(items, sheet or default, html)
    shown = f"{sheet or default}" + (f" and {html}" if html else "")
    typer.echo(f"wrote a preview of {len(items)} edits -> {shown}")

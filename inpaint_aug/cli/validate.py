"""The ``inpaint-aug validate`` command: every problem of a dataset and its prompts, no model.

Example:
    inpaint-aug validate coco.json --prompts prompts.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inpaint_aug.cli.common import (
    INPUT,
    OUTPUT,
    PLAN,
    Balance,
    Dilate,
    Images,
    KeepOutline,
    Limit,
    MaxCopies,
    MaxPer,
    MinSize,
    ModeOpt,
    RegionOpt,
    Steps,
    Strength,
    format_table,
    library_errors,
)
from inpaint_aug.inspect.validate import ValidationReport, validate

UNIT = "objects x copies; (image) row: images"


def validate_command(
    coco_json: Annotated[
        Path, typer.Argument(help="The COCO annotations JSON to check.", metavar="COCO_JSON")
    ],
    prompts: Annotated[Path | None, typer.Option(help="Prompts YAML to check against it.")] = None,
    images: Images = None,
    region: RegionOpt = PLAN.region,
    min_size: MinSize = PLAN.min_size,
    max_per_image: MaxPer = PLAN.max_per_image,
    steps: Steps = PLAN.steps,
    strength: Strength = PLAN.strength,
    copies: Annotated[
        int, typer.Option(help="Augmented variants per image, as for run.", rich_help_panel=OUTPUT)
    ] = PLAN.copies,
    dilate: Dilate = PLAN.dilate,
    mode: ModeOpt = PLAN.mode,
    keep_outline: KeepOutline = PLAN.keep_outline,
    balance: Balance = PLAN.balance,
    max_copies: MaxCopies = PLAN.max_copies,
    min_coverage: Annotated[
        float,
        typer.Option(
            help="Redraw an object only if this share of it is paintable.", rich_help_panel=INPUT
        ),
    ] = PLAN.min_coverage,
    limit: Limit = None,
) -> None:
    """Check a dataset and prompts without a model; list every problem and what a run would do.

    Pass the plan options of the run (--copies, --min-size...) to get its counts.
    Exit 0: a run would work (a problem with one item only skips that item).
    Exit 1: a run would not work; it stops too, with the same message.
    """
    settings = {
        "region": region,
        "min_size": min_size,
        "max_per_image": max_per_image,
        "steps": steps,
        "strength": strength,
        "copies": copies,
        "dilate": dilate,
        "min_coverage": min_coverage,
        "mode": mode,
        "keep_outline": keep_outline,
        "balance": balance,
        "max_copies": max_copies,
    }
    with library_errors():
        report = validate(coco_json, prompts, images, settings, limit)
    _print(report)
    if not report.ok:
        raise typer.Exit(1)


def _print(report: ValidationReport) -> None:
    """The findings, the per-class table, and the verdict on one line."""
    for f in report.findings:
        typer.echo(f"{f.level}: {f.where}: {f.message}", err=f.level == "error")
    rows = [["class", "would edit", f"would not edit (reason: count) [{UNIT}]"]]
    for name in sorted(set(report.would_edit) | set(report.would_skip)):
        skipped = ", ".join(f"{r}: {n}" for r, n in sorted(report.would_skip.get(name, {}).items()))
        rows.append([name, str(report.would_edit.get(name, 0)), skipped or "-"])
    if len(rows) > 1:  # an unreadable dataset has no class to show
        typer.echo(format_table(rows))
    if report.balance:
        head = ["class", "source instances", "target", "planned redraws", "images used", "plan"]
        table = [head]
        for name, b in sorted(report.balance.items()):
            status = "reaches the target" if b.reached else f"short by {b.target - b.planned}"
            counts = (b.source, b.target, b.planned, b.images)
            table.append([name, *map(str, counts), f"{status} ({b.extra} in extra copies)"])
        typer.echo(format_table(table))
    errors = sum(f.level == "error" for f in report.findings)
    redrawn = sum(report.would_edit.values())
    noun = "backgrounds" if "(background)" in report.would_edit else "objects"  # --mode
    verdict = (
        f"a run would work: {redrawn} {noun} would be redrawn before verification"
        if report.ok
        else "a run would NOT work"
    )
    typer.echo(
        f"{report.images_checked} images checked, {errors} errors, "
        f"{len(report.findings) - errors} warnings: {verdict}"
    )

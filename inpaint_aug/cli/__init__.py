"""The ``inpaint-aug`` command line: a thin Typer layer over the library.

Exit codes: 0 done, 1 a failure explained on one stderr line, 2 a usage error, 130 stopped by
Ctrl-C or SIGTERM (resume with ``--resume``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from inpaint_aug.cli.preview import preview_command
from inpaint_aug.errors import FatalError, Interrupted
from inpaint_aug.pipeline.backend import DEFAULT_MODEL
from inpaint_aug.pipeline.plan import PlanSettings
from inpaint_aug.pipeline.run import RunOptions, RunReport, run
from inpaint_aug.version import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Redraw labelled objects of a COCO dataset with Stable Diffusion inpainting, "
    "keeping every label true.",
)
_DEF = PlanSettings()
LCM_LORA = "latent-consistency/lcm-lora-sdv1-5"
log = logging.getLogger("inpaint_aug")


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


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line on stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    """Check an enumerated option (usage error, exit 2, when it is not allowed)."""
    if value not in allowed:
        raise typer.BadParameter(
            f"{value!r}; expected one of {', '.join(allowed)}", param_hint=flag
        )
    return value


def setup_logging(quiet: bool) -> None:
    """Log warnings (skips) to stderr, or only errors with ``--quiet``."""
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, format="%(message)s")


Model = Annotated[
    str,
    typer.Option(
        help="Hub id, local diffusers folder, .safetensors file, or "
        "'tiny-random' (offline noise model for checking the "
        "plumbing)."
    ),
]
Device = Annotated[str, typer.Option(help="auto|cpu|cuda|mps (auto: cuda > mps > cpu).")]
Steps = Annotated[int, typer.Option(min=1, help="Denoising steps.")]
Guidance = Annotated[float, typer.Option(min=0.0, help="Classifier-free guidance scale.")]
Strength = Annotated[float, typer.Option(min=0.01, max=1.0, help="Inpainting strength.")]
Resolution = Annotated[int, typer.Option(min=64, help="Model crop size, a multiple of 8.")]
Seed = Annotated[int, typer.Option(min=0, help="Base seed; each edit derives its own.")]
Region = Annotated[str, typer.Option(help="auto|mask|box: what the model may repaint.")]
MinSize = Annotated[
    int,
    typer.Option(min=0, help="Skip objects whose box is smaller than this many pixels on a side."),
]
Dilate = Annotated[int, typer.Option(min=0, help="Grow each mask by this many pixels.")]
MaxPer = Annotated[
    int | None, typer.Option(min=1, help="Edit at most N objects per image (largest first).")
]
Limit = Annotated[int | None, typer.Option(min=1, help="Only the first N source images.")]
Images = Annotated[Path | None, typer.Option(help="Image folder (found automatically).")]


@app.command("run")
def run_command(
    coco_json: Annotated[Path, typer.Argument(help="The COCO annotations JSON to augment.")],
    prompts: Annotated[Path, typer.Option(help="Prompts YAML: per-class prompt templates.")],
    out: Annotated[Path, typer.Option(help="Output folder (new or empty).")] = Path("augmented"),
    images: Images = None,
    model: Model = DEFAULT_MODEL,
    device: Device = "auto",
    dtype: Annotated[str, typer.Option(help="auto|fp16|bf16|fp32 (auto: fp16 on GPU).")] = "auto",
    steps: Steps = _DEF.steps,
    guidance: Guidance = _DEF.guidance,
    strength: Strength = _DEF.strength,
    resolution: Resolution = _DEF.resolution,
    batch_size: Annotated[int, typer.Option(min=1, help="Crops per model call.")] = 4,
    seed: Seed = 0,
    copies: Annotated[int, typer.Option(min=1, help="Augmented variants per image.")] = 1,
    region: Region = "auto",
    max_per_image: MaxPer = None,
    min_size: MinSize = _DEF.min_size,
    dilate: Dilate = _DEF.dilate,
    image_format: Annotated[
        str, typer.Option(help="auto|png|jpg (auto follows the input).")
    ] = "auto",
    format: Annotated[
        str,
        typer.Option(
            "--format", help="coco|yolo|yolo-seg: yolo also writes OUT/yolo/ for Ultralytics."
        ),
    ] = "coco",
    split: Annotated[
        str, typer.Option(help="Split name for --format yolo (train|val|test).")
    ] = "train",
    include_originals: Annotated[
        bool, typer.Option(help="Also copy the source images and labels into OUT.")
    ] = False,
    limit: Limit = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    preset: Annotated[
        str, typer.Option(help="quality|fast: fast = LCM-LoRA, 4 steps, guidance 1.")
    ] = "quality",
    lcm_lora: Annotated[
        str | None, typer.Option(help=f"LCM-LoRA for --preset fast [default: {LCM_LORA}].")
    ] = None,
    compile: Annotated[bool, typer.Option(help="torch.compile the UNet (GPU; one shape).")] = False,
    cpu_offload: Annotated[
        bool, typer.Option(help="Offload sub-models to the CPU (small GPUs).")
    ] = False,
    vae_slicing: Annotated[bool, typer.Option(help="Decode one image at a time (memory).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Threads for decoding and cropping.")] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Augment COCO_JSON: redraw each eligible object and write a new COCO dataset to --out."""
    choice(region, ("auto", "mask", "box"), "--region")
    choice(device, ("auto", "cpu", "cuda", "mps"), "--device")
    choice(dtype, ("auto", "fp16", "bf16", "fp32"), "--dtype")
    choice(image_format, ("auto", "png", "jpg"), "--image-format")
    choice(format, ("coco", "yolo", "yolo-seg"), "--format")
    choice(preset, ("quality", "fast"), "--preset")
    if resolution % 8:
        raise typer.BadParameter(f"{resolution} is not a multiple of 8", param_hint="--resolution")
    if preset == "fast":
        steps, guidance, lcm_lora = 4, 1.0, lcm_lora or LCM_LORA
    setup_logging(quiet)
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
        dtype=dtype,
        compile=compile,
        cpu_offload=cpu_offload,
        vae_slicing=vae_slicing,
        lcm_lora=lcm_lora,
        batch_size=batch_size,
        workers=workers,
        image_format=image_format,
        limit=limit,
        resume=resume,
        include_originals=include_originals,
        format=format,
        split=split,
        plan=plan,
    )
    report = _run_with_progress(options, quiet)
    if not quiet:
        print_summary(report)


def _run_with_progress(options: RunOptions, quiet: bool) -> RunReport:
    """Run with a progress bar (objects/s, ETA) on stderr; map failures to exit codes."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="obj", desc="inpainting", disable=quiet or None, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        return run(options, progress=progress)
    except Interrupted as err:
        raise fail(str(err), code=130) from None
    except FatalError as err:
        raise fail(str(err)) from None
    finally:
        bar.close()


def print_summary(report: RunReport) -> None:
    """The end-of-run summary: per-class table, skips by reason, timings."""
    per = report.seconds_model / report.objects_edited if report.objects_edited else 0.0
    originals = f" + {report.originals_written} originals" if report.originals_written else ""
    typer.echo(
        f"wrote {report.images_written} augmented images{originals}, "
        f"{report.annotations_written} annotations, {report.objects_edited} objects redrawn "
        f"-> {report.out / 'annotations.json'}"
    )
    typer.echo(format_table(class_rows(report)))
    typer.echo(
        f"time: {report.seconds_total:.1f}s total, model load {report.seconds_load:.1f}s, "
        f"{per:.3f}s of model time per object; details in {report.out / 'run.json'}"
    )
    if report.exported:
        typer.echo(f"YOLO dataset: {report.exported}")


def class_rows(report: RunReport) -> list[list[str]]:
    """Rows of (class, edited, not edited by reason), then image-level skips."""
    rows = [["class", "edited", "not edited (reason: count)"]]
    for name, row in report.per_class.items():
        detail = ", ".join(f"{r}: {n}" for r, n in sorted(row["skipped"].items()))
        rows.append([name, str(row["edited"]), detail or "-"])
    for key, count in report.skip_counts().items():
        if key.startswith("image/"):
            rows.append([f"({key})", "", str(count)])
    return rows


def format_table(rows: list[list[str]]) -> str:
    """Left-aligned plain-text columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


app.command("preview")(preview_command)


@app.command("validate")
def validate_command(
    coco_json: Annotated[Path, typer.Argument(help="The COCO annotations JSON to check.")],
    prompts: Annotated[Path | None, typer.Option(help="Prompts YAML to check against it.")] = None,
    images: Images = None,
    region: Region = "auto",
    min_size: MinSize = _DEF.min_size,
    max_per_image: MaxPer = None,
    limit: Limit = None,
) -> None:
    """Check a dataset and prompts without a model; list every problem and what a run would do.

    Exits 0 when a run would work (problems with single items only skip those items).
    """
    from inpaint_aug.inspect.validate import validate

    choice(region, ("auto", "mask", "box"), "--region")
    plan = PlanSettings(region=region, min_size=min_size, max_per_image=max_per_image)
    report = validate(coco_json, prompts, images, plan, limit)
    for f in report.findings:
        typer.echo(f"{f.level}: {f.where}: {f.message}", err=f.level == "error")
    rows = [["class", "would edit", "would not edit (reason: count)"]]
    for name in sorted(set(report.would_edit) | set(report.would_skip)):
        skipped = ", ".join(f"{r}: {n}" for r, n in sorted(report.would_skip.get(name, {}).items()))
        rows.append([name, str(report.would_edit.get(name, 0)), skipped or "-"])
    typer.echo(format_table(rows))
    errors = sum(f.level == "error" for f in report.findings)
    typer.echo(
        f"{report.images_checked} images checked, {errors} errors, "
        f"{len(report.findings) - errors} warnings: "
        f"{'a run would work' if report.ok else 'a run would NOT work'}"
    )
    if not report.ok:
        raise typer.Exit(1)

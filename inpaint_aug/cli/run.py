"""The ``inpaint-aug run`` command: build the options, run with a progress bar, summarise.

Example:
    inpaint-aug run coco.json --prompts prompts.yaml --out augmented --device cuda
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from inpaint_aug.choices import (
    Control,
    Dtype,
    Executor,
    ExportFormat,
    ImageFormat,
    OnReject,
    Preset,
    Split,
    VerifyMode,
)
from inpaint_aug.cli.common import (
    CONTROL_EPILOG,
    INPUT,
    MODEL,
    MODEL_EPILOG,
    OUTPUT,
    PLAN,
    QUALITY,
    RUN,
    SPEED,
    Balance,
    BatchSize,
    DeviceOpt,
    Dilate,
    Guidance,
    Images,
    KeepOutline,
    Limit,
    MaxCopies,
    MaxPer,
    MinSize,
    Model,
    ModeOpt,
    Prompts,
    RegionOpt,
    Resolution,
    Seed,
    Steps,
    Strength,
    format_table,
    library_errors,
    setup_logging,
)
from inpaint_aug.options import LCM_LORA, PlanSettings, RunOptions, VerifySettings
from inpaint_aug.pipeline.progress import auto_progress, unit_for
from inpaint_aug.pipeline.report import RunReport
from inpaint_aug.pipeline.run import run
from inpaint_aug.pipeline.verifier_loading import DEFAULT_CLIP, DEFAULT_OWLV2


def _flag(text: str, panel: str, *names: str) -> typer.models.OptionInfo:
    return typer.Option(*names, help=text, rich_help_panel=panel)


EPILOG = (
    f"{MODEL_EPILOG}. LCM-LoRA of --preset fast: {LCM_LORA}. Verifiers: {DEFAULT_CLIP} (clip), "
    f"{DEFAULT_OWLV2} (owlv2). {CONTROL_EPILOG}."
)
VERIFY = "Verify"
RAY = "Ray"
SHAPE = "Shape control"
VERIFY_DEFAULTS = VerifySettings()


def run_command(
    coco_json: Annotated[
        Path, typer.Argument(help="The COCO annotations JSON to augment.", metavar="COCO_JSON")
    ],
    prompts: Prompts,
    out: Annotated[Path, _flag("Output folder (new or empty).", OUTPUT)] = Path(RUN["out"]),
    images: Images = None,
    model: Model = RUN["model"],
    device: DeviceOpt = RUN["device"],
    dtype: Annotated[Dtype, _flag("Precision (auto: fp16 on a GPU).", MODEL)] = RUN["dtype"],
    lcm_lora: Annotated[
        str | None, _flag("LCM-LoRA for --preset fast \\[default: see the end of --help].", MODEL)
    ] = None,
    preset: Annotated[Preset, _flag("fast = LCM-LoRA, 4 steps, guidance 1.", QUALITY)] = RUN[
        "preset"
    ],
    steps: Steps = PLAN.steps,
    guidance: Guidance = PLAN.guidance,
    strength: Strength = PLAN.strength,
    resolution: Resolution = PLAN.resolution,
    seed: Seed = PLAN.seed,
    copies: Annotated[int, _flag("Augmented variants per image.", OUTPUT)] = PLAN.copies,
    region: RegionOpt = PLAN.region,
    max_per_image: MaxPer = PLAN.max_per_image,
    min_size: MinSize = PLAN.min_size,
    dilate: Dilate = PLAN.dilate,
    mode: ModeOpt = PLAN.mode,
    keep_outline: KeepOutline = PLAN.keep_outline,
    balance: Balance = PLAN.balance,
    max_copies: MaxCopies = PLAN.max_copies,
    limit: Limit = None,
    batch_size: BatchSize = RUN["batch_size"],
    workers: Annotated[int, _flag("Max threads for decoding, cropping.", SPEED)] = RUN["workers"],
    compile: Annotated[
        bool, _flag("torch.compile the UNet (GPU; one shape).", SPEED, "--compile")
    ] = False,
    cpu_offload: Annotated[
        bool, _flag("Offload sub-models to the CPU (small GPUs).", SPEED, "--cpu-offload")
    ] = False,
    vae_slicing: Annotated[
        bool, _flag("Decode one image at a time (memory).", SPEED, "--vae-slicing")
    ] = False,
    image_format: Annotated[
        ImageFormat, _flag("Output images (auto follows the input).", OUTPUT)
    ] = RUN["image_format"],
    format: Annotated[
        ExportFormat,
        _flag("yolo/yolo-seg also write OUT/yolo/ for Ultralytics.", OUTPUT, "--format"),
    ] = RUN["format"],
    split: Annotated[Split, _flag("Split name for a YOLO export.", OUTPUT)] = RUN["split"],
    yolo_dir: Annotated[
        Path | None,
        _flag("YOLO dataset folder \\[default: OUT/yolo]; may hold other splits.", OUTPUT),
    ] = None,
    include_originals: Annotated[
        bool,
        _flag("Also copy the source images and labels into OUT.", OUTPUT, "--include-originals"),
    ] = False,
    resume: Annotated[
        bool, _flag("Continue the run in --out (the same command does too).", OUTPUT, "--resume")
    ] = False,
    verify: Annotated[
        VerifyMode, _flag("Check each redraw against its label (auto: CLIP).", VERIFY)
    ] = VERIFY_DEFAULTS.mode,
    verifier_model: Annotated[
        str | None, _flag("Verifier hub id or folder \\[default: see the end].", VERIFY)
    ] = None,
    verify_threshold: Annotated[
        float | None,
        _flag(
            "CLIP: score points a redraw may fall below its source (2.5); "
            "OWLv2: share of the source's score it must keep (0.5).",
            VERIFY,
        ),
    ] = None,
    verify_retries: Annotated[
        int, _flag("New seeds for a rejected redraw.", VERIFY)
    ] = VERIFY_DEFAULTS.retries,
    on_reject: Annotated[
        OnReject, _flag("revert: keep the source pixels; drop: skip that image.", VERIFY)
    ] = VERIFY_DEFAULTS.on_reject,
    min_coverage: Annotated[
        float, _flag("Redraw an object only if this share of it is paintable.", INPUT)
    ] = PLAN.min_coverage,
    executor: Annotated[
        Executor, _flag("Where batches run: local threads, or a Ray actor pool.", RAY)
    ] = RUN["executor"],
    ray_address: Annotated[
        str | None,
        _flag("Ray cluster: auto or HOST:PORT \\[default: a local Ray for this run].", RAY),
    ] = None,
    ray_actors: Annotated[
        int | None, _flag("Ray actors (one model each) \\[default: one per GPU].", RAY)
    ] = None,
    control: Annotated[
        Control, _flag("Shape control: canny = a ControlNet on the crop's edges.", SHAPE)
    ] = PLAN.control,
    controlnet: Annotated[
        str, _flag("ControlNet id or folder for --control (SDXL default: end of --help).", SHAPE)
    ] = PLAN.controlnet,
    control_scale: Annotated[
        float, _flag("ControlNet scale in [0, 2]; lower for boxes under 64 px.", SHAPE)
    ] = PLAN.control_scale,
    quiet: Annotated[bool, _flag("Print only errors.", OUTPUT, "--quiet", "-q")] = False,
) -> None:
    """Augment COCO_JSON: redraw each eligible object and write a new COCO dataset to --out."""
    with library_errors():
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
            min_coverage=min_coverage,
            control=control,
            controlnet=controlnet,
            control_scale=control_scale,
            mode=mode,
            keep_outline=keep_outline,
            balance=balance,
            max_copies=max_copies,
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
            yolo_dir=yolo_dir,
            preset=preset,
            plan=plan,
            verify=VerifySettings(
                mode=verify,
                model=verifier_model,
                threshold=verify_threshold,
                retries=verify_retries,
                on_reject=on_reject,
            ),
            executor=executor,
            ray_address=ray_address,
            ray_actors=ray_actors,
        )
        setup_logging(quiet)
        report = _run_with_progress(options, quiet)
    if not quiet:
        print_summary(report)


def _run_with_progress(options: RunOptions, quiet: bool) -> RunReport:
    """Run with progress on stderr (objects/s, ETA); none with ``--quiet``.

    A bar on a terminal; plain lines when stderr is a pipe or a file (nohup, a scheduler), every
    30 s (``$INPAINT_AUG_PROGRESS_INTERVAL``) and one at the end.
    """
    reporter = None if quiet else auto_progress(leave=False, unit=unit_for(options.plan.mode))
    try:
        return run(options, progress=reporter or False)
    finally:
        if reporter is not None:
            reporter.close()


def print_summary(report: RunReport) -> None:
    """The end-of-run summary: per-class table, skips by reason, timings."""
    originals = f" + {report.originals_written} originals" if report.originals_written else ""
    noun = "backgrounds" if "(background)" in report.per_class else "objects"  # --mode
    typer.echo(
        f"wrote {report.images_written} augmented images{originals}, "
        f"{report.annotations_written} annotations, {report.objects_edited} {noun} redrawn "
        f"-> {report.out / 'annotations.json'}"
    )
    typer.echo(format_table(class_rows(report)))
    if report.objects_this_run:  # what this invocation redrew (a resume: only what was left)
        per = f"{report.seconds_model / report.objects_this_run:.3f}s of model time per {noun[:-1]}"
    else:
        per = "no object redrawn by this invocation"
    typer.echo(
        f"time: {report.seconds_total:.1f}s total, model load {report.seconds_load:.1f}s, "
        f"{per}, verifier {report.seconds_verify:.1f}s; details in {report.out / 'run.json'}"
    )
    if report.exported:
        typer.echo(f"YOLO dataset: {report.exported}")


def class_rows(report: RunReport) -> list[list[str]]:
    """Rows of (class, edited, after a retry, rejected, not edited by reason), then image skips.

    The header names the unit (see :func:`~inpaint_aug.pipeline.report.per_class`): objects
    per output copy, each source object counted once in each copy; image rows count images.
    """
    unit = "[objects x copies; (image/...) rows: images]"
    rows = [["class", "edited", "after retry", "rejected", f"not edited (reason: count) {unit}"]]
    for name, row in report.per_class.items():
        detail = ", ".join(f"{r}: {n}" for r, n in sorted(row["skipped"].items()))
        counts = [str(row[k]) for k in ("edited", "after_retry", "rejected")]
        if "target" in row:
            counts[0] += f" (target {row['target']}{'' if row['reached'] else ', short'})"
        rows.append([name, *counts, detail or "-"])
    for key, count in report.skip_counts().items():
        if key.startswith("image/"):
            rows.append([f"({key})", "", "", "", str(count)])
    return rows

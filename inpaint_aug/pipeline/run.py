"""Run the stages: read → plan → cut → inpaint a batch → paste → write.

:func:`run` reads as its numbered steps. Options were checked when they were built; step 1
checks everything else that can be checked before any slow work (the dataset, the prompts and
their per-class settings, the output folder), and the model loads before anything is written.

Example:
    >>> from inpaint_aug.options import RunOptions
    >>> report = run(RunOptions(coco="datasets/shapes/annotations.json",
    ...                         prompts="datasets/shapes/prompts.yaml", model="tiny-random",
    ...                         out="augmented"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from inpaint_aug.choices import ExportFormat
from inpaint_aug.dataset.coco import CocoDataset, load_coco
from inpaint_aug.dataset.prompts import PromptBook, load_prompts
from inpaint_aug.errors import Interrupted
from inpaint_aug.exporters.yolo import export_yolo
from inpaint_aug.files import copy_file, inside, make_dirs, write_json
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.backend import Inpainter
from inpaint_aug.pipeline.batch import ModelCaller
from inpaint_aug.pipeline.engine import Engine, EngineSettings, EngineStats
from inpaint_aug.pipeline.journal import STATE_DIR, Journal, check_output_folder
from inpaint_aug.pipeline.models import Models, load_models
from inpaint_aug.pipeline.plan import (
    Skip,
    check_image,
    check_schedules,
    kept_annotations,
    plan_dataset,
)
from inpaint_aug.pipeline.records import (
    IMAGES_DIR,
    ImageRecord,
    Original,
    Task,
    assemble,
    original_record,
    output_tasks,
)
from inpaint_aug.pipeline.report import RunReport, per_class, report_dict
from inpaint_aug.pipeline.signals import interrupt_on_signals, stop_on_signals
from inpaint_aug.pipeline.verify import Verifier

Progress = Callable[[int, int], None]


def load_inputs(options: RunOptions) -> tuple[CocoDataset, PromptBook]:
    """Load and validate the dataset and the prompt book, and check every class's settings.

    Raises:
        DatasetError: the COCO file or its image folder is unusable.
        PromptError: the prompts file is invalid, or a class's steps and strength give no step.
    """
    ds = load_coco(options.coco, options.images)
    names = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    book = load_prompts(options.prompts, names)
    check_schedules(book, options.plan)
    return ds, book


def fingerprint(options: RunOptions) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues."""
    digest = {
        k: hashlib.sha256(Path(getattr(options, k)).read_bytes()).hexdigest()[:16]
        for k in ("coco", "prompts")
    }
    plain = options.to_dict()
    return {
        **{k: plain[k] for k in ("model", "image_format", "limit", "batch_size", "dtype")},
        "lcm_lora": options.lcm_lora,
        "coco_sha256": digest["coco"],
        "prompts_sha256": digest["prompts"],
        **{f"plan.{k}": v for k, v in plain["plan"].items()},
        **{f"verify.{k}": v for k, v in plain["verify"].items()},
    }


def run(
    options: RunOptions,
    inpainter: Inpainter | None = None,
    progress: Progress | None = None,
    verifier: Verifier | None = None,
) -> RunReport:
    """Run the whole job and write ``OUT/annotations.json``, ``OUT/run.json`` and the images.

    Args:
        options: what to do (checked when it was built).
        inpainter: a ready model; loaded from ``options`` when ``None`` (and only if there is
            work left to do).
        progress: called with ``(objects_done, objects_total)`` after each batch.
        verifier: a ready verifier (any object with ``name`` and ``verify``); loaded from
            ``options.verify`` when ``None`` (see :mod:`inpaint_aug.pipeline.models`).

    Raises:
        FatalError: bad inputs, a model that cannot load, an unusable output folder.
        Interrupted: SIGINT or SIGTERM; what is finished is kept for ``resume=True``.
    """
    started = time.perf_counter()
    out = Path(options.out)
    # 1. Read and check the inputs and the output folder; nothing is written yet.
    ds, book = load_inputs(options)
    check_output_folder(out, options.resume)
    # 2. Plan every edit; number and name every output file.
    jobs, skips = plan_dataset(ds, book, options.plan, options.limit)
    originals = ds.images[: options.limit] if options.include_originals else []
    tasks, copies = output_tasks(jobs, originals, options.image_format)
    # 3. Load the model before anything is written (a resumed run loads it only if needed).
    resuming = options.resume and (out / STATE_DIR / "journal.jsonl").is_file()
    models = None
    if not resuming and jobs:
        models = _load_models_first(out, options, inpainter, verifier)
    # 4. Open the journal and redraw what is left.
    journal = Journal.open(out, fingerprint(options), options.resume)
    make_dirs(out / IMAGES_DIR)
    try:
        given = models or (inpainter, verifier)
        stats, seconds_load = _execute(ds, tasks, options, given, journal, progress)
    finally:
        journal.close()
    # 5. Write the originals, the dataset and its export.
    edited = list(journal.records.values())
    kept, original_skips = _write_originals(out, ds, copies)
    all_skips = list(dict.fromkeys(skips + journal.skips)) + original_skips
    data = assemble(ds.raw, edited + kept)
    write_json(out / "annotations.json", data)
    exported = _export(data, out, options)
    # 6. Report what was done.
    report = RunReport(
        out=out,
        images_planned=len(jobs),
        images_written=len(edited),
        originals_written=len(kept),
        objects_edited=sum(len(r.edited_ann_indexes) for r in edited),
        annotations_written=len(data["annotations"]),
        per_class=per_class(ds, edited, all_skips),
        skips=tuple(all_skips),
        seconds_model=stats.seconds_model,
        seconds_verify=stats.seconds_verify,
        seconds_load=(models.seconds_load if models else 0.0) + seconds_load,
        exported=exported,
    )
    report = replace(report, seconds_total=time.perf_counter() - started)
    write_json(out / "run.json", report_dict(options, report))
    return report


def _load_models_first(
    out: Path, options: RunOptions, inpainter: Inpainter | None, verifier: Verifier | None
) -> Models:
    """Load the models before anything is written, after checking OUT can be created.

    If loading fails or is interrupted, an OUT folder made here (still empty) is removed again,
    so the next attempt needs no ``--resume``.
    """
    created = not out.exists()
    make_dirs(out)
    try:
        with interrupt_on_signals("while loading the model; nothing was written"):
            return load_models(options, inpainter, verifier)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _execute(
    ds: CocoDataset,
    tasks: list[Task],
    options: RunOptions,
    given: Models | tuple[Inpainter | None, Verifier | None],
    journal: Journal,
    progress: Progress | None,
) -> tuple[EngineStats, float]:
    """Redraw the tasks the journal has not ended; stop cleanly on a signal.

    Returns the engine's figures and the seconds spent loading models here (on resume).
    """
    todo = [t for t in tasks if t.number not in journal.ended]
    if not todo:
        return EngineStats(0.0, 0), 0.0
    models = given if isinstance(given, Models) else load_models(options, *given)
    seconds_load = 0.0 if isinstance(given, Models) else models.seconds_load
    labels = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    caller = ModelCaller(
        models.inpainter, options.batch_size, models.verifier, options.verify.retries, labels
    )
    settings = EngineSettings(options.workers, max(4, options.batch_size))
    engine = Engine(
        ds,
        options.plan,
        caller,
        journal,
        Path(options.out),
        settings,
        progress,
        options.verify.on_reject,
    )
    total = sum(len(t.job.edits) for t in tasks)
    with stop_on_signals(engine.stop) as caught:
        stats = engine.process(todo, total)
    if caught:
        done = len(journal.ended)
        raise Interrupted(
            f"stopped by {caught[0]} after {done} of {len(tasks)} images; the "
            "finished ones are kept: run the same command with --resume"
        )
    return stats, seconds_load


def _write_originals(
    out: Path, ds: CocoDataset, copies: list[Original]
) -> tuple[list[ImageRecord], list[Skip]]:
    """Copy the source images unchanged (bytes) with their labels.

    This gives one training set holding originals and augmentations; a missing source is
    skipped and reported.
    """
    kept, _ = kept_annotations(ds, {c.image["id"] for c in copies})
    records, skips = [], []
    for original in copies:
        image, src = original.image, ds.image_path(original.image)
        if check_image(image) or not src.is_file():
            skips.append(Skip("image", "original-missing", f"{src}", image.get("id")))
            continue
        target = inside(out, original.file_name)
        if not target.exists():  # written by an earlier attempt of this run
            copy_file(src, target)
        records.append(original_record(original, kept.get(image["id"], [])))
    return records, skips


def _export(data: dict[str, Any], out: Path, options: RunOptions) -> str | None:
    """Write the trainer export the options ask for; return its data.yaml path."""
    if options.format is ExportFormat.coco:
        return None
    task = "segment" if options.format is ExportFormat.yolo_seg else "detect"
    return str(export_yolo(data, out, out / "yolo", task, options.split.value).data_yaml)

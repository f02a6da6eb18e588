"""Run the stages: read → plan → cut → inpaint a batch → paste → write.

:func:`run` reads as its numbered steps. Options were checked when they were built; step 1
checks everything else that can be checked before any slow work (the dataset, the prompts and
their per-class settings), step 2 checks and locks the output folder (one run per OUT), and the
model loads before anything else is written.

Example:
    >>> from inpaint_aug.options import RunOptions
    >>> report = run(RunOptions(coco="datasets/shapes/annotations.json",
    ...                         prompts="datasets/shapes/prompts.yaml", model="tiny-random",
    ...                         out="augmented"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from inpaint_aug.choices import Executor, ExportFormat
from inpaint_aug.dataset.coco import CocoDataset, load_coco
from inpaint_aug.dataset.prompts import PromptBook, load_prompts
from inpaint_aug.dataset.schedules import check_schedules
from inpaint_aug.errors import OptionsError
from inpaint_aug.exporters.yolo import export_yolo
from inpaint_aug.exporters.yolo_layout import check_target
from inpaint_aug.files import copy_file, inside, make_dirs, write_json
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.backend import Inpainter
from inpaint_aug.pipeline.balance import class_targets
from inpaint_aug.pipeline.engine import EngineStats
from inpaint_aug.pipeline.execute import execute_local
from inpaint_aug.pipeline.journal import Journal, fingerprint, has_journal
from inpaint_aug.pipeline.lock import claimed
from inpaint_aug.pipeline.models import Models, load_models
from inpaint_aug.pipeline.plan import (
    Skip,
    check_image,
    kept_annotations,
    plan_dataset,
)
from inpaint_aug.pipeline.predict import image_problem, require_redraw
from inpaint_aug.pipeline.progress import ProgressArg, log_plan_skips, resolve_progress, unit_for
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
from inpaint_aug.pipeline.signals import interrupt_on_signals
from inpaint_aug.pipeline.verify import Verifier

log = logging.getLogger(__name__)
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


def run(
    options: RunOptions,
    inpainter: Inpainter | None = None,
    progress: ProgressArg = None,
    verifier: Verifier | None = None,
) -> RunReport:
    """Run the whole job and write ``OUT/annotations.json``, ``OUT/run.json`` and the images.

    An OUT holding an earlier run's journal with the same settings is continued (as
    ``resume=True`` does): a job requeued by a batch scheduler runs the very same command again.

    Args:
        options: what to do (checked when it was built).
        inpainter: a ready model; loaded from ``options`` when ``None`` (and only if there is
            work left to do).
        progress: ``None``: a bar (plain lines when stderr is no terminal); ``False``: none; a
            callable: called with ``(objects_done, objects_total)`` after each batch.
        verifier: a ready verifier (any object with ``name`` and ``verify``); loaded from
            ``options.verify`` when ``None`` (see :mod:`inpaint_aug.pipeline.models`).

    Raises:
        FatalError: bad inputs, a model that cannot load, an unusable output folder, or one
            that another run is using.
        Interrupted: SIGINT or SIGTERM; what is finished is kept, and the same command continues.
    """
    started = time.perf_counter()
    progress = resolve_progress(progress, unit_for(options.plan.mode))  # see pipeline.progress
    out = Path(options.out)
    # 1. Read and check the inputs (and the export's target); nothing is written yet.
    if options.executor is Executor.ray:
        from inpaint_aug.executors.ray import require_ray

        require_ray()  # else: exit 1 here, saying how to install it
        if inpainter is not None or verifier is not None:
            raise OptionsError.free("--executor ray: workers load their models; pass no objects")
    ds, book = load_inputs(options)
    _export(ds.raw, out, options, check=True)
    plan = options.plan
    # 2. Check and lock the output folder: one run per OUT (only OUT/.inpaint_aug is made).
    with claimed(out):
        # 3. Plan every edit; number and name every output file.
        jobs, skips = plan_dataset(ds, book, options.plan, options.limit)
        require_redraw(ds, jobs, skips, options.limit)  # else: exit 1 here
        originals = ds.images[: options.limit] if options.include_originals else []
        tasks, copies = output_tasks(jobs, originals, options.image_format)
        # 4. Load the model before anything else is written (when continuing: only if needed;
        # with Ray, each worker loads its own).
        models = None
        if not has_journal(out) and jobs and options.executor is Executor.local:
            models = _load_models_first(options, inpainter, verifier)
        # 5. Open the journal and redraw what is left.
        journal = _open_journal(out, options, len(tasks))
        log_plan_skips(skips, str(out / "run.json"))
        ended_before = set(journal.ended)
        try:
            given = models or (inpainter, verifier)
            stats, seconds_load = _execute(ds, tasks, options, given, journal, progress)
        finally:
            journal.close()
        # 6. Write the originals, the dataset and its export.
        edited = list(journal.records.values())
        kept, original_skips = _write_originals(out, ds, copies)
        all_skips = list(dict.fromkeys(skips + journal.skips)) + original_skips
        data = assemble(ds.raw, edited + kept)
        write_json(out / "annotations.json", data)
        exported = _export(data, out, options)
        # 7. Report what was done (by this invocation: the model time per object).
        report = RunReport(
            out=out,
            images_planned=len(jobs),
            images_written=len(edited),
            originals_written=len(kept),
            objects_edited=_objects(edited),
            objects_this_run=_objects(r for r in edited if r.out_image_id not in ended_before),
            annotations_written=len(data["annotations"]),
            per_class=per_class(ds, edited, all_skips, plan.copies, class_targets(book, plan)),
            skips=tuple(all_skips),
            seconds_model=stats.seconds_model,
            seconds_verify=stats.seconds_verify,
            seconds_load=(models.seconds_load if models else 0.0) + seconds_load,
            seconds_total=time.perf_counter() - started,
            exported=exported,
        )
        nothing_left = all(t.number in ended_before for t in tasks)
        previous = _previous_report(out) if nothing_left else None
        write_json(out / "run.json", report_dict(options, report, previous))
    return report


def _objects(records: Iterable[ImageRecord]) -> int:
    return sum(r.redraws for r in records)


def _load_models_first(
    options: RunOptions, inpainter: Inpainter | None, verifier: Verifier | None
) -> Models:
    """Load the models before anything but the lock is written.

    If loading fails or is interrupted, :func:`~inpaint_aug.pipeline.lock.claimed` removes the
    lock and the folders it made, so the next attempt starts as if nothing had happened.
    """
    with interrupt_on_signals("while loading the model; nothing was written"):
        return load_models(options, inpainter, verifier)


def _open_journal(out: Path, options: RunOptions, n_tasks: int) -> Journal:
    """Open (or continue) the journal, and say on stderr when an earlier run is continued.

    Raises:
        OutputError: the journal's settings differ from these (naming each one).
    """
    continued = has_journal(out)
    journal = Journal.open(out, fingerprint(options), True, settings=options.to_dict())
    make_dirs(out / IMAGES_DIR)
    if continued and len(journal.ended) < n_tasks:
        log.warning("resuming: %d of %d images done (%s)", len(journal.ended), n_tasks, out)
    elif continued:
        log.warning("nothing left to do: all %d images were done (%s)", n_tasks, out)
    return journal


def _previous_report(out: Path) -> dict[str, Any] | None:
    """The ``run.json`` an earlier invocation wrote, or ``None`` (missing or unreadable)."""
    try:
        data = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _execute(
    ds: CocoDataset,
    tasks: list[Task],
    options: RunOptions,
    given: Models | tuple[Inpainter | None, Verifier | None],
    journal: Journal,
    progress: Progress | None,
) -> tuple[EngineStats, float]:
    """Redraw what the journal has not finished, on the executor the options name."""
    if options.executor is Executor.ray:
        from inpaint_aug.executors.ray import execute_ray

        return execute_ray(ds, tasks, options, journal, progress)
    return execute_local(ds, tasks, options, given, journal, progress)


def _write_originals(
    out: Path, ds: CocoDataset, copies: list[Original]
) -> tuple[list[ImageRecord], list[Skip]]:
    """Copy the source images unchanged (bytes) with their labels.

    This gives one training set holding originals and augmentations. A source the edited
    copies could not use either (missing, unreadable, not the size the JSON says) is skipped
    and reported as ``original-missing``, ``original-unreadable``, ``original-size-mismatch``.
    """
    kept, _ = kept_annotations(ds, {c.image["id"] for c in copies})
    records, skips = [], []
    for original in copies:
        image, src = original.image, ds.image_path(original.image)
        skip = _original_problem(ds, image)
        if skip:
            skips.append(skip)
            continue
        target = inside(out, original.file_name)
        if not target.exists():  # written by an earlier attempt of this run
            copy_file(src, target)
        records.append(original_record(original, kept.get(image["id"], [])))
    return records, skips


def _original_problem(ds: CocoDataset, image: dict[str, Any]) -> Skip | None:
    """Why a source image cannot be copied as an original (its file's header, as validate)."""
    if check_image(image):  # no usable width, height or file name
        return Skip("image", "original-missing", f"{ds.image_path(image)}", image.get("id"))
    problem = image_problem(ds, image)
    if problem is None:
        return None
    reason = "original-" + problem.reason.removeprefix("image-")
    return Skip("image", reason, problem.detail, image.get("id"))


def _export(
    data: dict[str, Any], out: Path, options: RunOptions, check: bool = False
) -> str | None:
    """Write the trainer export the options ask for; return its data.yaml path.

    YOLO goes to ``options.yolo_dir`` (default ``OUT/yolo``; it may hold other splits), its
    images hard links to OUT's where possible. ``check``: write nothing, only raise what would
    stop this export (called before any slow work, ``data`` then the source dataset).
    """
    if options.format is ExportFormat.coco:
        return None
    task = "segment" if options.format is ExportFormat.yolo_seg else "detect"
    root = Path(options.yolo_dir) if options.yolo_dir is not None else out / "yolo"
    if check:
        check_target(root, options.split.value, task, data["categories"])
        return None
    return str(export_yolo(data, out, root, task, options.split.value, link=True).data_yaml)

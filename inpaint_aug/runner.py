"""Run the stages: read → plan → cut → inpaint a batch → paste → write.

Crops from many objects and images are gathered into batches of the same size and settings,
so one model call serves many objects. Images are held in memory only while they have edits
in flight, which bounds memory by the batch size, not the dataset size.

Example:
    >>> from inpaint_aug.runner import RunOptions, run
    >>> report = run(RunOptions(coco="datasets/shapes/annotations.json",
    ...                         prompts="datasets/shapes/prompts.yaml", model="tiny-random",
    ...                         out="augmented"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .backend import DEFAULT_MODEL, Inpainter, InpaintRequest
from .coco import CocoDataset, load_coco, save_json_atomic
from .errors import ItemError
from .journal import Journal, check_output_folder
from .plan import Edit, ImageJob, PlanSettings, Skip, plan_dataset
from .prompts import PromptBook, load_prompts
from .render import cut, load_image, output_format, paste, region_mask, save_image
from .writer import IMAGES_DIR, ImageRecord, inside, make_record, output_names, write_dataset

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs; the CLI builds one from its flags."""

    coco: Path | str
    prompts: Path | str
    out: Path | str = "augmented"
    images: Path | str | None = None
    model: str = DEFAULT_MODEL
    device: str = "auto"
    batch_size: int = 4
    image_format: str = "auto"
    limit: int | None = None
    resume: bool = False
    plan: PlanSettings = field(default_factory=PlanSettings)


@dataclass
class RunReport:
    """What a run did: counts, skips with reasons, timings. Saved as ``OUT/run.json``."""

    out: Path
    images_planned: int = 0
    images_written: int = 0
    objects_edited: int = 0
    annotations_written: int = 0
    skips: list[Skip] = field(default_factory=list)
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    seconds_load: float = 0.0

    def skip_counts(self) -> dict[str, int]:
        """Number of skips per ``kind/reason``."""
        counts: dict[str, int] = {}
        for s in self.skips:
            counts[f"{s.kind}/{s.reason}"] = counts.get(f"{s.kind}/{s.reason}", 0) + 1
        return dict(sorted(counts.items()))


def load_inputs(options: RunOptions) -> tuple[CocoDataset, PromptBook]:
    """Load and validate the dataset and the prompt book (fatal errors raise)."""
    ds = load_coco(options.coco, options.images)
    names = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    return ds, load_prompts(options.prompts, names)


def fingerprint(options: RunOptions) -> dict[str, Any]:
    """The settings a resumed run must share with the run it continues."""
    digest = {
        k: hashlib.sha256(Path(getattr(options, k)).read_bytes()).hexdigest()[:16]
        for k in ("coco", "prompts")
    }
    return {
        "model": options.model,
        "image_format": options.image_format,
        "limit": options.limit,
        "coco_sha256": digest["coco"],
        "prompts_sha256": digest["prompts"],
        **{f"plan.{k}": v for k, v in asdict(options.plan).items()},
    }


def run(
    options: RunOptions, inpainter: Inpainter | None = None, progress: Progress | None = None
) -> RunReport:
    """Run the whole job and write ``OUT/annotations.json``, ``OUT/run.json`` and the images.

    Args:
        options: what to do.
        inpainter: a ready model; loaded from ``options.model`` when ``None``.
        progress: called with ``(objects_done, objects_total)`` after each batch.
    """
    started = time.perf_counter()
    ds, book = load_inputs(options)
    out = Path(options.out)
    check_output_folder(out, options.resume)
    jobs, skips = plan_dataset(ds, book, options.plan, options.limit)
    (out / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    journal = Journal.open(out, fingerprint(options), options.resume)
    report = RunReport(out=out, images_planned=len(jobs))
    todo = [i for i in range(len(jobs)) if i + 1 not in journal.ended]
    if todo and inpainter is None:
        t0 = time.perf_counter()
        from .backend import DiffusersInpainter

        inpainter = DiffusersInpainter.load(options.model, options.device)
        report.seconds_load = time.perf_counter() - t0
    try:
        if todo:
            assert inpainter is not None
            engine = Engine(ds, jobs, options, inpainter, journal, report, progress)
            engine.process(todo)
    finally:
        journal.close()
    all_skips = list(dict.fromkeys(skips + journal.skips))  # a resumed job may repeat a skip
    finish(out, ds, options, report, all_skips, list(journal.records.values()))
    report.seconds_total = time.perf_counter() - started
    save_json_atomic(report_dict(options, report), out / "run.json")
    return report


def finish(
    out: Path,
    ds: CocoDataset,
    options: RunOptions,
    report: RunReport,
    skips: list[Skip],
    records: list[ImageRecord],
) -> None:
    """Write the final dataset and fill the report's counts."""
    write_dataset(out, ds.raw, records)
    report.skips = skips
    report.images_written = len(records)
    report.objects_edited = sum(len(r.edited_ann_indexes) for r in records)
    report.annotations_written = sum(len(r.annotations) for r in records)


def report_dict(options: RunOptions, report: RunReport) -> dict[str, Any]:
    """``run.json``: settings, counts, timings and every skip with its reason."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()}
    return {
        "version": __version__,
        "settings": settings,
        "counts": {
            "images_planned": report.images_planned,
            "images_written": report.images_written,
            "objects_edited": report.objects_edited,
            "annotations_written": report.annotations_written,
            "skipped": report.skip_counts(),
        },
        "seconds": {
            "total": round(report.seconds_total, 3),
            "model": round(report.seconds_model, 3),
            "model_load": round(report.seconds_load, 3),
        },
        "skipped": [asdict(s) for s in report.skips],
    }


@dataclass
class _Pending:
    """An image with edits in flight."""

    index: int
    job: ImageJob
    pixels: np.ndarray
    remaining: int
    done: list[tuple[Edit, Any, np.ndarray]] = field(default_factory=list)


class Engine:
    """Cuts crops, batches them across images by settings, runs the model, pastes, writes."""

    def __init__(
        self,
        ds: CocoDataset,
        jobs: list[ImageJob],
        options: RunOptions,
        inpainter: Inpainter,
        journal: Journal,
        report: RunReport,
        progress: Progress | None,
    ) -> None:
        self.ds, self.jobs, self.options = ds, jobs, options
        self.inpainter, self.journal, self.report = inpainter, journal, report
        self.progress = progress
        formats = [output_format(j.image.get("file_name", ""), options.image_format) for j in jobs]
        self.formats = formats
        self.names = output_names(jobs, formats)
        self.buckets: dict[tuple, list[tuple[_Pending, Edit, Any]]] = {}
        self.total = sum(len(jobs[i].edits) for i in range(len(jobs)))
        self.finished = sum(len(jobs[n - 1].edits) for n in journal.ended if n <= len(jobs))

    def process(self, todo: list[int]) -> None:
        """Run every job in ``todo`` (indexes into ``jobs``), then flush what is left."""
        for index in todo:
            self.submit(index)
        for key in list(self.buckets):
            self.flush(key)

    def submit(self, index: int) -> None:
        """Read an image, cut its crops and queue them; full batches run at once."""
        job = self.jobs[index]
        image = job.image
        try:
            pixels = load_image(self.ds.image_path(image), image.get("width"), image.get("height"))
        except ItemError as err:
            self._skip("image", err, image["id"])
            self.journal.end_without_record(index + 1)
            self._advance(len(job.edits))
            return
        pending = _Pending(index, job, pixels, remaining=len(job.edits))
        size = (pixels.shape[1], pixels.shape[0])
        for edit in job.edits:
            try:
                region = region_mask(edit, job.annotations, size, self.options.plan)
            except ItemError as err:
                self._skip("edit", err, image["id"], edit.annotation_id)
                self._one_done(pending)
                continue
            crop = cut(pixels, edit, region, self.options.plan)
            bucket = self.buckets.setdefault(edit.settings_key, [])
            bucket.append((pending, edit, crop))
            if len(bucket) >= self.options.batch_size:
                self.flush(edit.settings_key)

    def flush(self, key: tuple) -> None:
        """Run one batch through the model and paste every result back."""
        items = self.buckets.pop(key, [])
        if not items:
            return
        requests = [
            InpaintRequest(
                c.pixels,
                c.mask,
                e.prompt,
                e.negative_prompt,
                e.seed,
                e.steps,
                e.guidance,
                e.strength,
            )
            for _, e, c in items
        ]
        # Pad to a fixed batch shape: an item's result then depends only on its own inputs,
        # so resumed runs (which batch differently) give identical files.
        padded = requests + [requests[-1]] * (self.options.batch_size - len(requests))
        t0 = time.perf_counter()
        results = self.inpainter.inpaint(padded)[: len(requests)]
        self.report.seconds_model += time.perf_counter() - t0
        for (pending, edit, crop), result in zip(items, results, strict=True):
            pending.done.append((edit, crop, result))
            self._one_done(pending)
        self._advance(0)

    def _one_done(self, pending: _Pending) -> None:
        pending.remaining -= 1
        self.finished += 1
        if pending.remaining == 0:
            self._write(pending)

    def _write(self, pending: _Pending) -> None:
        """Save a finished image, then journal it (so a journal line implies the file)."""
        job = pending.job
        if not pending.done:
            reason = ItemError("no-edit-left", "every planned edit of this image was skipped")
            self._skip("image", reason, job.image["id"])
            self.journal.end_without_record(pending.index + 1)
            return
        # Paste in annotation order, whatever order the batches ran in: overlapping dilated
        # regions then always resolve the same way.
        done = sorted(pending.done, key=lambda item: item[0].ann_index)
        for edit, crop, result in done:
            paste(pending.pixels, edit.window, crop.alpha, result)
        name = self.names[pending.index]
        save_image(pending.pixels, inside(self.report.out, name), self.formats[pending.index])
        edits = [edit for edit, _, _ in done]
        self.journal.add_record(
            make_record(job, pending.index + 1, name, self.inpainter.name, edits)
        )

    def _skip(self, kind: str, err: ItemError, image_id: Any, ann_id: Any = None) -> None:
        log.warning("skipped %s %s: %s", kind, image_id, err)
        self.journal.add_skip(Skip(kind, err.reason, err.detail, image_id, ann_id))

    def _advance(self, count: int) -> None:
        self.finished += count
        if self.progress:
            self.progress(self.finished, self.total)

"""The local executor: threads around the model, joined by bounded queues.

Images are decoded and cut in worker threads, the model runs in the caller's thread, and
results are pasted and written in another thread.

* Worker threads read images (EXIF, mode fixes), decode masks and cut crops for the next
  ``prefetch`` tasks while the model runs (torch releases the GIL inside its kernels).
* Crops wait in buckets keyed by (steps, guidance, strength); a full bucket goes through the
  batch function (:class:`~inpaint_aug.pipeline.batch.ModelCaller`) at once.
* A finished image goes to a writer thread that pastes its results in annotation order,
  encodes, writes atomically and journals it.

Memory is bounded by ``prefetch`` images being prepared, the images with crops in buckets (at
most one per bucketed crop) and ``2 * workers`` images waiting to be written.

Example:
    >>> stats = Engine(ds, plan, caller, journal, out).process(tasks)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_aug.choices import OnReject
from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.dataset.images import encode_image, load_image
from inpaint_aug.errors import ItemError
from inpaint_aug.files import inside, write_bytes
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.batch import ModelCaller, Outcome
from inpaint_aug.pipeline.crops import Crop, cut, paintable, paste
from inpaint_aug.pipeline.journal import Journal
from inpaint_aug.pipeline.plan import Edit, Skip
from inpaint_aug.pipeline.records import MadeEdit, Task, make_record
from inpaint_aug.pipeline.verify import Box, box_in_crop

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EngineSettings:
    """How the work is scheduled (no effect on results)."""

    workers: int = 2
    prefetch: int = 8


@dataclass(frozen=True)
class EngineStats:
    """What :meth:`Engine.process` did: model seconds and objects handled."""

    seconds_model: float
    objects_done: int
    seconds_verify: float = 0.0


@dataclass
class _Pending:
    """An image with edits in flight."""

    task: Task
    pixels: np.ndarray
    remaining: int
    done: list[tuple[Outcome, Crop]] = field(default_factory=list)
    rejected: list[tuple[Outcome, Crop]] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    """What a worker made of one task: its pixels and crops, or the error that stopped it."""

    task: Task
    pixels: np.ndarray | None
    crops: tuple[tuple[Edit, Crop, Box], ...] = ()
    failed: tuple[tuple[Edit, ItemError], ...] = ()
    error: ItemError | None = None


def prepare(ds: CocoDataset, task: Task, plan: PlanSettings) -> _Prepared:
    """Read a task's image and cut a crop for each edit (per-edit failures collected)."""
    job = task.job
    try:
        pixels = load_image(ds.image_path(job.image), job.image["width"], job.image["height"])
    except ItemError as err:
        return _Prepared(task, None, error=err)
    size = (pixels.shape[1], pixels.shape[0])
    crops, failed = [], []
    for edit in job.edits:
        try:
            region, share = paintable(edit, job.annotations, size, plan.dilate, plan.min_coverage)
        except ItemError as err:
            failed.append((edit, err))
            continue
        crop = cut(pixels, edit.window, region, plan.resolution, plan.feather, coverage=share)
        bbox = job.annotations[edit.ann_index]["bbox"] if edit.ann_index >= 0 else [0, 0, *size]
        crops.append((edit, crop, box_in_crop(bbox, edit.window.xyxy, plan.resolution)))
    return _Prepared(task, pixels, tuple(crops), tuple(failed))


class Engine:
    """Runs tasks through the model; see the module docstring for the flow.

    Args:
        ds: the source dataset.
        plan: the run's plan settings (dilation, crop resolution, feathering).
        caller: the batch function around the model.
        journal: where finished images and skips are recorded.
        out: the output folder.
        settings: worker threads and prefetch depth.
        progress: called with (objects done, total objects) as objects finish.
    """

    def __init__(
        self,
        ds: CocoDataset,
        plan: PlanSettings,
        caller: ModelCaller,
        journal: Journal,
        out: Path,
        settings: EngineSettings = EngineSettings(),
        progress: Progress | None = None,
        on_reject: OnReject = OnReject.revert,
    ) -> None:
        self.ds, self.plan, self.caller, self.journal = ds, plan, caller, journal
        self.out, self.settings, self.progress = out, settings, progress
        self.on_reject = on_reject
        self.buckets: dict[tuple, list[tuple[_Pending, Edit, Crop, Box]]] = {}
        self.stop = threading.Event()
        self.objects_done = 0
        self.total = 0
        self._lock = threading.Lock()
        self._write_slots = threading.Semaphore(2 * max(1, settings.workers))
        self._writes: list[Future] = []

    def process(self, tasks: list[Task], total: int | None = None) -> EngineStats:
        """Run ``tasks`` unless stopped; ``total`` objects (for progress) defaults to theirs."""
        self.total = total if total is not None else sum(len(t.job.edits) for t in tasks)
        self.objects_done = self.total - sum(len(t.job.edits) for t in tasks)
        pool = ThreadPoolExecutor(max(1, self.settings.workers), thread_name_prefix="prep")
        writer = ThreadPoolExecutor(1, thread_name_prefix="write")
        try:
            self._run(tasks, pool, writer)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            writer.shutdown(wait=True)
        self._raise_write_errors()
        return EngineStats(self.caller.seconds, self.objects_done, self.caller.seconds_verify)

    def _run(self, tasks: list[Task], pool: ThreadPoolExecutor, writer: ThreadPoolExecutor):
        ahead: deque[Future] = deque()
        queue = iter(tasks)
        while True:
            while len(ahead) < self.settings.prefetch and not self.stop.is_set():
                task = next(queue, None)
                if task is None:
                    break
                ahead.append(pool.submit(prepare, self.ds, task, self.plan))
            if not ahead or self.stop.is_set():
                break
            self.accept(ahead.popleft().result(), writer)
        if not self.stop.is_set():
            for key in list(self.buckets):
                self.flush(key, writer)

    def accept(self, prep: _Prepared, writer: ThreadPoolExecutor) -> None:
        """Main thread: queue a prepared task's crops; run every bucket that fills up."""
        task = prep.task
        if prep.error is not None or prep.pixels is None:
            self._skip("image", prep.error, task)
            self._journal_ended(task)
            self._advance(len(task.job.edits))
            return
        pending = _Pending(task, prep.pixels, remaining=len(task.job.edits))
        for edit, err in prep.failed:
            self._skip("edit", err, task, edit)
            self._one_done(pending, writer)
        for edit, crop, box in prep.crops:
            bucket = self.buckets.setdefault(edit.settings_key, [])
            bucket.append((pending, edit, crop, box))
            if len(bucket) >= self.caller.batch_size:
                self.flush(edit.settings_key, writer)

    def flush(self, key: tuple, writer: ThreadPoolExecutor) -> None:
        """Run one bucket through the batch function and hand the results on."""
        items = self.buckets.pop(key, [])
        if not items:
            return
        edits, crops, boxes = ([item[k] for item in items] for k in (1, 2, 3))
        outcomes = self.caller.redraw(edits, crops, boxes)
        for (pending, _, crop, _), outcome in zip(items, outcomes, strict=True):
            if outcome.rejected:
                pending.rejected.append((outcome, crop))
                self._skip("edit", outcome.error, pending.task, outcome.edit)
            elif outcome.result is None:
                self._skip("edit", outcome.error, pending.task, outcome.edit)
            else:
                pending.done.append((outcome, crop))
            self._one_done(pending, writer)
        self._advance(0)

    def _one_done(self, pending: _Pending, writer: ThreadPoolExecutor) -> None:
        pending.remaining -= 1
        self.objects_done += 1
        if pending.remaining == 0:
            self._raise_write_errors()
            self._write_slots.acquire()
            self._writes.append(writer.submit(self._write, pending))

    def _write(self, pending: _Pending) -> None:
        """Writer thread: paste in annotation order, save atomically, then journal."""
        try:
            task = pending.task
            unwritten = self._unwritten(pending)
            if unwritten is not None:
                self._skip("image", unwritten, task)
                self._journal_ended(task)
                return
            done = sorted(pending.done, key=lambda item: item[0].edit.ann_index)
            for outcome, crop in done:
                paste(pending.pixels, outcome.edit.window, crop.alpha, outcome.result)
            data = encode_image(pending.pixels, task.image_format)
            write_bytes(inside(self.out, task.file_name), data)
            made = [self._made(o, c) for o, c in done]
            rejected = [self._made(o, c) for o, c in sorted(pending.rejected, key=_ann_order)]
            name = self.caller.inpainter.name
            record = make_record(task.job, task.number, task.file_name, name, made, rejected)
            with self._lock:
                self.journal.add_record(record)
        finally:
            self._write_slots.release()

    def _unwritten(self, pending: _Pending) -> ItemError | None:
        """Why an image with no edit in flight is not written, or ``None`` when it is."""
        if pending.rejected and self.on_reject is OnReject.drop:
            count = len(pending.rejected)
            return ItemError("verify-rejected", f"{count} redraw(s) rejected; --on-reject drop")
        if pending.done:
            return None
        if pending.rejected:
            return ItemError("all-rejected", "the verifier rejected every redraw of this image")
        return ItemError("no-edit-left", "every planned edit of this image was skipped")

    def _made(self, outcome: Outcome, crop: Crop) -> MadeEdit:
        """The record of one edit as made: seed used, coverage, the verifier's verdict."""
        verdict, verifier = outcome.verdict, self.caller.verifier
        verify = None
        if verdict is not None and verifier is not None:
            verify = {
                "verifier": verifier.name,
                "score": round(float(verdict.score), 4),
                "source_score": round(float(verdict.source_score), 4),
                "threshold": round(float(verdict.threshold), 4),
                "attempts": outcome.attempts,
            }
        return MadeEdit(outcome.edit, crop.coverage, verify)

    def _raise_write_errors(self) -> None:
        for fut in [f for f in self._writes if f.done()]:
            self._writes.remove(fut)
            fut.result()  # re-raises a writer error (a full disk, say) in the main thread

    def _journal_ended(self, task: Task) -> None:
        with self._lock:
            self.journal.end_without_record(task.number)

    def _skip(self, kind: str, err: ItemError | None, task: Task, edit: Edit | None = None):
        err = err or ItemError("unknown", "no detail")
        image_id: Any = task.job.image["id"]
        ann, cat = (edit.annotation_id, edit.category_id) if edit else (None, None)
        log.warning("skipped %s of image %s: %s", kind, image_id, err)
        with self._lock:
            self.journal.add_skip(Skip(kind, err.reason, err.detail, image_id, ann, cat))

    def _advance(self, count: int) -> None:
        self.objects_done += count
        if self.progress:
            self.progress(self.objects_done, self.total)


def _ann_order(item: tuple[Outcome, Crop]) -> int:
    return item[0].edit.ann_index

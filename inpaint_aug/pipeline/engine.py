"""The pipelined executor: decode and cut in threads, the model in the caller's thread, paste
and write in another thread, joined by bounded queues.

* Worker threads read images (EXIF, mode fixes), decode masks and cut crops for the next
  ``prefetch`` jobs while the model runs (torch releases the GIL inside its kernels).
* Crops wait in buckets keyed by (steps, guidance, strength); a full bucket goes to the model at
  once. Batches are always padded to ``batch_size``, so an item's result depends only on its own
  inputs: resumed or regrouped runs give identical files.
* A finished image goes to a writer thread that pastes its results in annotation order, encodes,
  writes atomically and journals it.

Memory is bounded by ``prefetch`` images being prepared, the images with crops in buckets (at
most one per bucketed crop) and ``2 * workers`` images waiting to be written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.errors import ItemError, OutOfMemory, OutputError
from inpaint_aug.pipeline.backend import Inpainter, InpaintRequest
from inpaint_aug.pipeline.crops import Crop, cut, load_image, paste, region_mask, save_image
from inpaint_aug.pipeline.journal import Journal
from inpaint_aug.pipeline.plan import Edit, ImageJob, PlanSettings, Skip
from inpaint_aug.pipeline.records import inside, make_record

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
RETRIES = 2


@dataclass(frozen=True)
class EngineSettings:
    """How the work is scheduled (no effect on results, except ``batch_size`` by rounding)."""

    batch_size: int = 4
    workers: int = 2
    prefetch: int = 8


@dataclass
class _Pending:
    """An image with edits in flight."""

    index: int
    job: ImageJob
    pixels: np.ndarray
    remaining: int
    done: list[tuple[Edit, Crop, np.ndarray]] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    """What a worker made of one job: its pixels and crops, or the error that stopped it."""

    index: int
    pixels: np.ndarray | None
    crops: tuple[tuple[Edit, Crop], ...] = ()
    failed: tuple[tuple[Edit, ItemError], ...] = ()
    error: ItemError | None = None


def invalid_output(result: np.ndarray) -> bool:
    """All-black output (also what the backend returns for NaN): the model failed."""
    return int(result.max()) <= 2


def retry_seed(seed: int, attempt: int) -> int:
    """Another deterministic seed for a retry after an invalid model output."""
    return (seed + 1_000_003 * attempt) & 0x7FFFFFFF


class Engine:
    """Runs jobs through the model; see the module docstring for the flow."""

    def __init__(self, ds: CocoDataset, jobs: list[ImageJob], plan: PlanSettings,
                 inpainter: Inpainter, journal: Journal, out: Any, names: list[str],
                 formats: list[str], settings: EngineSettings) -> None:  # fmt: skip
        self.ds, self.jobs, self.plan, self.inpainter = ds, jobs, plan, inpainter
        self.journal, self.out, self.names, self.formats = journal, out, names, formats
        self.settings = settings
        self.batch_size = settings.batch_size  # halved on out-of-memory
        self.buckets: dict[tuple, list[tuple[_Pending, Edit, Crop]]] = {}
        self.seconds_model = 0.0
        self.objects_done = 0
        self.stop = threading.Event()
        self.progress: Progress | None = None
        self.total = sum(len(j.edits) for j in jobs)
        self._lock = threading.Lock()
        self._write_slots = threading.Semaphore(2 * max(1, settings.workers))
        self._writes: list[Future] = []

    def process(self, todo: list[int]) -> None:
        """Run the jobs numbered in ``todo`` (indexes into ``jobs``) unless stopped."""
        pool = ThreadPoolExecutor(max(1, self.settings.workers), thread_name_prefix="prep")
        writer = ThreadPoolExecutor(1, thread_name_prefix="write")
        try:
            self._run(todo, pool, writer)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            writer.shutdown(wait=True)
        self._raise_write_errors()

    def _run(self, todo: list[int], pool: ThreadPoolExecutor, writer: ThreadPoolExecutor) -> None:
        ahead: deque[Future] = deque()
        queue = iter(todo)
        while True:
            while len(ahead) < self.settings.prefetch and not self.stop.is_set():
                index = next(queue, None)
                if index is None:
                    break
                ahead.append(pool.submit(self.prepare, index))
            if not ahead or self.stop.is_set():
                break
            self.accept(ahead.popleft().result(), writer)
        if not self.stop.is_set():
            for key in list(self.buckets):
                self.flush(key, writer)

    def prepare(self, index: int) -> _Prepared:
        """Worker: read the image and cut a crop for each edit (per-edit failures collected)."""
        job = self.jobs[index]
        image = job.image
        try:
            pixels = load_image(self.ds.image_path(image), image["width"], image["height"])
        except ItemError as err:
            return _Prepared(index, None, error=err)
        size = (pixels.shape[1], pixels.shape[0])
        crops, failed = [], []
        for edit in job.edits:
            try:
                region = region_mask(edit, job.annotations, size, self.plan)
                crops.append((edit, cut(pixels, edit, region, self.plan)))
            except ItemError as err:
                failed.append((edit, err))
        return _Prepared(index, pixels, tuple(crops), tuple(failed))

    def accept(self, prep: _Prepared, writer: ThreadPoolExecutor) -> None:
        """Main thread: queue a prepared job's crops; run every bucket that fills up."""
        job = self.jobs[prep.index]
        if prep.error is not None or prep.pixels is None:
            self._skip("image", prep.error, job.image["id"])
            self.journal_ended(prep.index)
            self._advance(len(job.edits))
            return
        pending = _Pending(prep.index, job, prep.pixels, remaining=len(job.edits))
        for edit, err in prep.failed:
            self._skip("edit", err, job.image["id"], edit)
            self._one_done(pending, writer)
        for edit, crop in prep.crops:
            bucket = self.buckets.setdefault(edit.settings_key, [])
            bucket.append((pending, edit, crop))
            if len(bucket) >= self.batch_size:
                self.flush(edit.settings_key, writer)

    def flush(self, key: tuple, writer: ThreadPoolExecutor) -> None:
        """Run one bucket through the model, retry invalid outputs, hand results on."""
        items = self.buckets.pop(key, [])
        if not items:
            return
        results = self._call([request_for(e, c) for _, e, c in items])
        edits = [e for _, e, _ in items]
        for attempt in range(1, RETRIES + 1):
            bad = [i for i, r in enumerate(results) if invalid_output(r)]
            if not bad:
                break
            log.warning("invalid model output for %d crop(s); retrying with new seeds", len(bad))
            edits = [replace(e, seed=retry_seed(e.seed, attempt)) if i in bad else e
                     for i, e in enumerate(edits)]  # fmt: skip
            again = self._call([request_for(edits[i], items[i][2]) for i in bad])
            for i, r in zip(bad, again, strict=True):
                results[i] = r
        for (pending, _, crop), edit, result in zip(items, edits, results, strict=True):
            if invalid_output(result):
                err = ItemError("model-output-invalid", f"black or NaN after {RETRIES} retries")
                self._skip("edit", err, pending.job.image["id"], edit)
            else:
                pending.done.append((edit, crop, result))
            self._one_done(pending, writer)
        self._advance(0)

    def _call(self, requests: list[InpaintRequest]) -> list[np.ndarray]:
        """Padded model calls of ``batch_size`` (one shape; see the module docstring).

        On out-of-memory the batch size is halved for the rest of the run (logged); quality
        settings are never changed.
        """
        results: list[np.ndarray] = []
        start = 0
        while start < len(requests):
            chunk = requests[start : start + self.batch_size]
            t0 = time.perf_counter()
            try:
                results += call_padded(self.inpainter, chunk, self.batch_size)
            except OutOfMemory as err:
                if self.batch_size == 1:
                    raise OutputError(
                        f"{err}; even a batch of 1 does not fit: try "
                        "--cpu-offload, --vae-slicing or a lower --resolution"
                    ) from None
                self.batch_size //= 2
                log.warning("%s; going on with --batch-size %d", err, self.batch_size)
                continue
            finally:
                self.seconds_model += time.perf_counter() - t0
            start += len(chunk)
        return results

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
            job = pending.job
            if not pending.done:
                err = ItemError("no-edit-left", "every planned edit of this image was skipped")
                self._skip("image", err, job.image["id"])
                self.journal_ended(pending.index)
                return
            done = sorted(pending.done, key=lambda item: item[0].ann_index)
            for edit, crop, result in done:
                paste(pending.pixels, edit.window, crop.alpha, result)
            name = self.names[pending.index]
            path = inside(self.out, name)
            try:
                save_image(pending.pixels, path, self.formats[pending.index])
            except OSError as err:
                raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
            record = make_record(job, pending.index + 1, name, self.inpainter.name,
                                 [e for e, _, _ in done])  # fmt: skip
            with self._lock:
                self.journal.add_record(record)
        finally:
            self._write_slots.release()

    def _raise_write_errors(self) -> None:
        for fut in [f for f in self._writes if f.done()]:
            self._writes.remove(fut)
            fut.result()  # re-raises a writer error (a full disk, say) in the main thread

    def journal_ended(self, index: int) -> None:
        with self._lock:
            self.journal.end_without_record(index + 1)

    def _skip(self, kind: str, err: ItemError | None, image_id: Any, edit: Edit | None = None):
        err = err or ItemError("unknown", "no detail")
        ann, cat = (edit.annotation_id, edit.category_id) if edit else (None, None)
        log.warning("skipped %s of image %s: %s", kind, image_id, err)
        with self._lock:
            self.journal.add_skip(Skip(kind, err.reason, err.detail, image_id, ann, cat))

    def _advance(self, count: int) -> None:
        self.objects_done += count
        if self.progress:
            self.progress(self.objects_done, self.total)


def request_for(edit: Edit, crop: Crop) -> InpaintRequest:
    """The model request of one edit's crop."""
    return InpaintRequest(crop.pixels, crop.mask, edit.prompt, edit.negative_prompt, edit.seed,
                          edit.steps, edit.guidance, edit.strength)  # fmt: skip


def call_padded(
    inpainter: Inpainter, requests: list[InpaintRequest], batch_size: int
) -> list[np.ndarray]:
    """One model call padded to ``batch_size`` (repeating the last request); returns one result
    per request. A fixed batch shape makes each result depend only on its own inputs."""
    padded = requests + [requests[-1]] * (batch_size - len(requests))
    return list(inpainter.inpaint(padded)[: len(requests)])

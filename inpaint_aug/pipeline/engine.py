"""The local executor: threads around the model, joined by bounded queues.

Images are decoded and cut in worker threads, the model runs in the caller's thread, and
results are pasted and written in another thread.

* The work comes as chunks of whole images with fixed batches
  (:func:`~inpaint_aug.pipeline.chunks.plan_chunks`): which crops share a model call is a
  function of the plan, never of timing or of where an earlier attempt stopped.
* Worker threads read images, decode masks and cut crops
  (:func:`~inpaint_aug.pipeline.prepare.prepare`) for the next ``prefetch`` tasks while the
  model runs (torch releases the GIL inside its kernels), across chunk boundaries.
* A planned batch goes through the batch function
  (:class:`~inpaint_aug.pipeline.batch.ModelCaller`) as soon as its last image is cut.
* A finished image goes to a writer thread that pastes its results in annotation order,
  encodes, writes atomically and journals it. Images an earlier attempt finished (``ended``)
  are computed again with their chunk, for its batches, but neither written nor journaled.

Memory: ``prefetch`` images being prepared, one chunk's images waiting for their batches, and
``2 * workers`` waiting to be written. The journal is anything with ``add_record``,
``add_skip`` and ``end_without_record`` (a remote worker passes a collector).

Example:
    >>> stats = Engine(ds, plan, caller, journal, out).process(tasks)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_aug.choices import OnReject
from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.errors import ItemError
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.batch import ModelCaller, Outcome
from inpaint_aug.pipeline.chunks import Chunk, EditRef
from inpaint_aug.pipeline.crops import Crop
from inpaint_aug.pipeline.finish import unwritten, write_image
from inpaint_aug.pipeline.journal import Journal
from inpaint_aug.pipeline.plan import Edit, Skip
from inpaint_aug.pipeline.prepare import Prepared, prepare
from inpaint_aug.pipeline.records import Task
from inpaint_aug.pipeline.verify import Box

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EngineSettings:
    """How the work is scheduled (no effect on results)."""

    workers: int = 2
    prefetch: int = 8


def helper_threads(requested: int, device: str, torch_threads: int | None, cores: int) -> int:
    """Image threads for the cores torch leaves free, at most ``requested``, at least one.

    The rule: a model on the CPU keeps ``torch_threads`` cores busy (its intra-op threads); one
    on a GPU or MPS keeps one core busy driving it. The writer thread and these helpers share
    the rest; more helpers than free cores only steal time from torch.

    Example:
        >>> [helper_threads(*a) for a in [(2, "cpu", 2, 2), (4, "cpu", 2, 8), (8, "cuda", 1, 6)]]
        [1, 4, 5]
    """
    busy = (torch_threads or cores) if device == "cpu" else 1
    return max(1, min(requested, cores - busy))


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
        self.waiting: dict[EditRef, tuple[_Pending, Edit, Crop, Box]] = {}  # this chunk's crops
        self.next_batch = 0  # the current chunk's first batch not yet run
        self.ended: frozenset[int] = frozenset()
        self.stop = threading.Event()
        self.objects_done = 0
        self.total = 0
        self._lock = threading.Lock()
        self._write_slots = threading.Semaphore(2 * max(1, settings.workers))
        self._writes: list[Future] = []

    def process(
        self, chunks: Sequence[Chunk], total: int | None = None, ended: Collection[int] = ()
    ) -> EngineStats:
        """Run ``chunks`` in order unless stopped (an unfinished chunk is then left undone).

        Args:
            chunks: whole chunks of :func:`~inpaint_aug.pipeline.chunks.plan_chunks`.
            total: objects of the whole run, for progress (default: the unfinished ones here).
            ended: output image numbers an earlier attempt finished: computed again for their
                batches, neither written nor journaled.
        """
        self.ended = frozenset(ended)
        todo = sum(len(t.job.edits) for c in chunks for t in c.tasks if t.number not in ended)
        self.total = total if total is not None else todo
        self.objects_done = self.total - todo
        pool = ThreadPoolExecutor(max(1, self.settings.workers), thread_name_prefix="prep")
        writer = ThreadPoolExecutor(1, thread_name_prefix="write")
        try:
            self._run(chunks, pool, writer)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            writer.shutdown(wait=True)
        self._raise_write_errors()
        return EngineStats(self.caller.seconds, self.objects_done, self.caller.seconds_verify)

    def _run(self, chunks: Sequence[Chunk], pool: ThreadPoolExecutor, writer: ThreadPoolExecutor):
        ahead: deque[tuple[Future, Chunk, int]] = deque()
        queue = ((chunk, pos, task) for chunk in chunks for pos, task in enumerate(chunk.tasks))
        while True:
            while len(ahead) < self.settings.prefetch and not self.stop.is_set():
                item = next(queue, None)
                if item is None:
                    break
                chunk, pos, task = item
                ahead.append((pool.submit(prepare, self.ds, task, self.plan), chunk, pos))
            if not ahead or self.stop.is_set():
                break
            future, chunk, pos = ahead.popleft()
            self.accept(future.result(), writer, chunk, pos)

    def accept(self, prep: Prepared, writer: ThreadPoolExecutor, chunk: Chunk, pos: int) -> None:
        """Main thread: hold a prepared task's crops; run the planned batches it completes."""
        if pos == 0:
            self.waiting, self.next_batch = {}, 0
        task = prep.task
        if prep.error is not None or prep.pixels is None:
            self._skip("image", prep.error, task)
            self._journal_ended(task)
            self._advance(0 if task.number in self.ended else len(task.job.edits))
        else:
            pending = _Pending(task, prep.pixels, remaining=len(task.job.edits))
            for edit, err in prep.failed:
                self._skip("edit", err, task, edit)
                self._one_done(pending, writer)
            for edit, crop, box in prep.crops:
                self.waiting[(pos, task.job.edits.index(edit))] = (pending, edit, crop, box)
        batches = chunk.batches
        while self.next_batch < len(batches) and batches[self.next_batch][-1][0] <= pos:
            refs = batches[self.next_batch]
            self.next_batch += 1
            self.flush([self.waiting.pop(r) for r in refs if r in self.waiting], writer)

    def flush(self, items: list[tuple[_Pending, Edit, Crop, Box]], writer: ThreadPoolExecutor):
        """Run one planned batch through the batch function and hand the results on."""
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
        if pending.task.number in self.ended:
            return  # finished by an earlier attempt: redrawn for its batch only
        self.objects_done += 1
        if pending.remaining == 0:
            self._raise_write_errors()
            self._write_slots.acquire()
            self._writes.append(writer.submit(self._write, pending))

    def _write(self, pending: _Pending) -> None:
        """Writer thread: paste in annotation order, save atomically, then journal."""
        try:
            task = pending.task
            why = unwritten(pending.done, pending.rejected, self.on_reject)
            if why is not None:
                self._skip("image", why, task)
                self._journal_ended(task)
                return
            results = (pending.done, pending.rejected)
            name, verifier = self.caller.inpainter.name, self.caller.verifier
            record = write_image(self.out, task, pending.pixels, results, name, verifier)
            with self._lock:
                self.journal.add_record(record)
        finally:
            self._write_slots.release()

    def _raise_write_errors(self) -> None:
        for fut in [f for f in self._writes if f.done()]:
            self._writes.remove(fut)
            fut.result()  # re-raises a writer error (a full disk, say) in the main thread

    def _journal_ended(self, task: Task) -> None:
        if task.number in self.ended:
            return
        with self._lock:
            self.journal.end_without_record(task.number)

    def _skip(self, kind: str, err: ItemError | None, task: Task, edit: Edit | None = None):
        if task.number in self.ended:
            return  # recorded by the attempt that finished this image
        err = err or ItemError("unknown", "no detail")
        image_id: Any = task.job.image["id"]
        ann, cat = (edit.annotation_id, edit.category_id) if edit else (None, None)
        skip = Skip(kind, err.reason, err.detail, image_id, ann, cat)
        log.warning("%s", skip.line())
        with self._lock:
            self.journal.add_skip(skip)

    def _advance(self, count: int) -> None:
        self.objects_done += count
        if self.progress:
            self.progress(self.objects_done, self.total)

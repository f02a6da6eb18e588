"""Batch composition as a function of the plan: chunks of whole images, fixed batches in each.

An edit's result depends (by float rounding, ~1e-6 on the CPU) on the other crops of its model
call, so which edits share a call must not depend on timing, threads, workers or where a run
was interrupted. :func:`plan_chunks` fixes it from the output tasks and the batch size alone:

* **Chunks.** The tasks, in plan order, are cut into runs of consecutive whole images: a chunk
  is closed at an image boundary as soon as it holds at least ``CHUNK_BATCHES * batch_size``
  edits (the last chunk takes what is left; an image with more edits is a chunk of its own).
* **Batches.** In each chunk the edits are grouped by ``Edit.settings_key`` (buckets in order of
  first appearance), each bucket cut in plan order into batches of ``batch_size``; the last
  batch of a bucket in a chunk may be smaller (it is not padded unless ``--compile`` asks for
  one shape). Batches are listed by the plan position of their last edit: the order in which
  streaming them completes them.

A chunk is the unit of recomputation: a resumed run redoes every chunk that holds an
unfinished image (its finished images are not written again), so every call sees the same
crops as in an uninterrupted run and the output is byte-identical without padding. A chunk is
also the unit of work a remote worker receives (:mod:`inpaint_aug.executors`).

Example:
    >>> from inpaint_aug.pipeline.plan import ImageJob
    >>> from inpaint_aug.pipeline.records import output_tasks
    >>> jobs = [ImageJob({"id": i, "file_name": f"{i}.png"}, 0, (), ()) for i in range(3)]
    >>> [len(c.tasks) for c in plan_chunks(output_tasks(jobs, [], "png")[0], batch_size=2)]
    [3]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inpaint_aug.pipeline.records import Task

# A chunk closes at the first image boundary once it holds this many batches' worth of edits.
# Larger: fewer short batches; smaller: less recomputed on resume, finer units for workers.
# Part of the journal fingerprint (it changes batch composition, hence results).
CHUNK_BATCHES = 4

EditRef = tuple[int, int]  # (task position in its chunk, edit position in the task's job)


@dataclass(frozen=True)
class Chunk:
    """Consecutive whole output images and the fixed model batches over their edits.

    Attributes:
        index: position of the chunk in the run (0, 1, ...).
        tasks: the output images, in plan order.
        batches: the model calls, each a tuple of :data:`EditRef`; every edit of ``tasks`` is
            in exactly one batch, and a batch never mixes settings.
    """

    index: int
    tasks: tuple[Task, ...]
    batches: tuple[tuple[EditRef, ...], ...]

    @property
    def n_edits(self) -> int:
        """Planned edits in this chunk."""
        return sum(len(t.job.edits) for t in self.tasks)


def plan_chunks(
    tasks: Sequence[Task], batch_size: int, min_batches: int = CHUNK_BATCHES
) -> list[Chunk]:
    """Split the output tasks, in order, into chunks with their fixed batches.

    Depends only on ``tasks`` (the plan) and ``batch_size`` (see the module docstring).

    Args:
        tasks: every output task of the run, in plan order (not only the unfinished ones).
        batch_size: the most edits in one model call.
        min_batches: a chunk closes once it holds ``min_batches * batch_size`` edits.

    Raises:
        ValueError: ``batch_size`` or ``min_batches`` is under 1.
    """
    if batch_size < 1 or min_batches < 1:
        raise ValueError(f"batch_size {batch_size} and min_batches {min_batches} must be >= 1")
    chunks: list[Chunk] = []
    current: list[Task] = []
    edits = 0
    for task in tasks:
        current.append(task)
        edits += len(task.job.edits)
        if edits >= min_batches * batch_size:
            chunks.append(_chunk(len(chunks), current, batch_size))
            current, edits = [], 0
    if current:
        chunks.append(_chunk(len(chunks), current, batch_size))
    return chunks


def _chunk(index: int, tasks: list[Task], batch_size: int) -> Chunk:
    """One chunk: its edits bucketed by settings in plan order, cut into batches."""
    buckets: dict[tuple, list[EditRef]] = {}
    for pos, task in enumerate(tasks):
        for k, edit in enumerate(task.job.edits):
            buckets.setdefault(edit.settings_key, []).append((pos, k))
    batches = [
        tuple(refs[start : start + batch_size])
        for refs in buckets.values()
        for start in range(0, len(refs), batch_size)
    ]
    batches.sort(key=lambda batch: batch[-1])
    return Chunk(index, tuple(tasks), tuple(batches))

"""A finished image: whether it is written, and if so pasted, encoded, written and recorded.

What the local engine's writer thread and a remote worker both do with an image whose edits
have all come back from the model (see :mod:`inpaint_aug.pipeline.engine`).

Example:
    >>> unwritten([], [], OnReject.revert).reason
    'no-edit-left'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inpaint_aug.choices import OnReject
from inpaint_aug.dataset.images import encode_image
from inpaint_aug.errors import ItemError
from inpaint_aug.files import inside, write_bytes
from inpaint_aug.pipeline.batch import Outcome
from inpaint_aug.pipeline.crops import Crop, paste
from inpaint_aug.pipeline.records import ImageRecord, MadeEdit, Task, make_record
from inpaint_aug.pipeline.verify import Verifier

Done = Sequence[tuple[Outcome, Crop]]


def unwritten(done: Done, rejected: Done, on_reject: OnReject) -> ItemError | None:
    """Why an image with no edit in flight is not written, or ``None`` when it is."""
    if rejected and on_reject is OnReject.drop:
        count = len(rejected)
        return ItemError("verify-rejected", f"{count} redraw(s) rejected; --on-reject drop")
    if done:
        return None
    if rejected:
        return ItemError("all-rejected", "the verifier rejected every redraw of this image")
    return ItemError("no-edit-left", "every planned edit of this image was skipped")


def made_edit(outcome: Outcome, crop: Crop, verifier: Verifier | None) -> MadeEdit:
    """The record of one edit as made: seed used, coverage, the verifier's verdict."""
    verdict = outcome.verdict
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


def write_image(
    out: Path,
    task: Task,
    pixels: np.ndarray,
    results: tuple[Done, Done],
    model: str,
    verifier: Verifier | None,
) -> ImageRecord:
    """Paste the kept results in annotation order, write the image atomically, return its record.

    Args:
        out: the output folder.
        task: the output image.
        pixels: its source pixels (pasted into in place).
        results: the kept and the rejected (reverted) redraws, with their crops.
        model: the model name recorded in provenance.
        verifier: the verifier whose verdicts the outcomes carry, if any.
    """
    done, rejected = (sorted(r, key=_ann_order) for r in results)
    for outcome, crop in done:
        paste(pixels, outcome.edit.window, crop.alpha, outcome.result)
    write_bytes(inside(out, task.file_name), encode_image(pixels, task.image_format))
    made = [made_edit(o, c, verifier) for o, c in done]
    reverted = [made_edit(o, c, verifier) for o, c in rejected]
    return make_record(task.job, task.number, task.file_name, model, made, reverted)


def _ann_order(item: tuple[Outcome, Crop]) -> int:
    return item[0].edit.ann_index

"""The batch function: redraw a group of crops that share model settings.

Used as it is by the local engine, by ``preview`` and by any other executor, so every caller
gets the same padding, out-of-memory halving and invalid-output retries:

* calls are padded to ``batch_size`` (repeating the last request): one batch shape, so an
  item's result depends only on its own inputs and ``--compile`` compiles once;
* on out-of-memory the batch size is halved for the rest of the run (logged); quality settings
  are never changed;
* an all-black (or NaN) result is retried with another deterministic seed, ``RETRIES`` times;
  the seed that made the result is the one recorded.

Example:
    >>> caller = ModelCaller(inpainter, batch_size=4)  # doctest: +SKIP
    >>> outcomes = caller.redraw(edits, crops)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from inpaint_aug.errors import ItemError, OutOfMemory, OutputError
from inpaint_aug.pipeline.backend import Inpainter, InpaintRequest
from inpaint_aug.pipeline.crops import Crop
from inpaint_aug.pipeline.plan import Edit

log = logging.getLogger(__name__)
RETRIES = 2


@dataclass(frozen=True)
class Outcome:
    """What became of one edit: its result, or why there is none.

    ``edit`` carries the seed that was really used (a retry changes it).
    """

    edit: Edit
    result: np.ndarray | None
    error: ItemError | None = None


def invalid_output(result: np.ndarray) -> bool:
    """All-black output (also what the backend returns for NaN): the model failed."""
    return int(result.max()) <= 2


def retry_seed(seed: int, attempt: int) -> int:
    """Another deterministic seed for a retry after an invalid model output."""
    return (seed + 1_000_003 * attempt) & 0x7FFFFFFF


def request_for(edit: Edit, crop: Crop) -> InpaintRequest:
    """The model request of one edit's crop."""
    return InpaintRequest(
        crop.pixels,
        crop.mask,
        edit.prompt,
        edit.negative_prompt,
        edit.seed,
        edit.steps,
        edit.guidance,
        edit.strength,
    )


def call_padded(
    inpainter: Inpainter, requests: list[InpaintRequest], batch_size: int
) -> list[np.ndarray]:
    """One model call padded to ``batch_size``; returns one result per request."""
    padded = requests + [requests[-1]] * (batch_size - len(requests))
    return list(inpainter.inpaint(padded)[: len(requests)])


class ModelCaller:
    """Runs groups of same-settings crops through one model, in padded batches.

    Args:
        inpainter: the model.
        batch_size: crops per model call; halved on out-of-memory.

    Attributes:
        seconds: model time spent so far.
    """

    def __init__(self, inpainter: Inpainter, batch_size: int) -> None:
        self.inpainter = inpainter
        self.batch_size = batch_size
        self.seconds = 0.0

    def redraw(self, edits: Sequence[Edit], crops: Sequence[Crop]) -> list[Outcome]:
        """Redraw edits that share ``settings_key``; retry invalid outputs with new seeds."""
        edits = list(edits)
        results = self.call([request_for(e, c) for e, c in zip(edits, crops, strict=True)])
        for attempt in range(1, RETRIES + 1):
            bad = [i for i, r in enumerate(results) if invalid_output(r)]
            if not bad:
                break
            log.warning("invalid model output for %d crop(s); retrying with new seeds", len(bad))
            for i in bad:
                edits[i] = replace(edits[i], seed=retry_seed(edits[i].seed, attempt))
            again = self.call([request_for(edits[i], crops[i]) for i in bad])
            for i, result in zip(bad, again, strict=True):
                results[i] = result
        return [_outcome(e, r) for e, r in zip(edits, results, strict=True)]

    def call(self, requests: list[InpaintRequest]) -> list[np.ndarray]:
        """Padded model calls of ``batch_size``, halving it on out-of-memory.

        Raises:
            OutputError: even a batch of one does not fit.
        """
        results: list[np.ndarray] = []
        start = 0
        while start < len(requests):
            chunk = requests[start : start + self.batch_size]
            t0 = time.perf_counter()
            try:
                results += call_padded(self.inpainter, chunk, self.batch_size)
            except OutOfMemory as err:
                self._halve(err)
                continue
            finally:
                self.seconds += time.perf_counter() - t0
            start += len(chunk)
        return results

    def _halve(self, err: OutOfMemory) -> None:
        if self.batch_size == 1:
            raise OutputError(
                f"{err}; even a batch of 1 does not fit: try "
                "--cpu-offload, --vae-slicing or a lower --resolution"
            ) from None
        self.batch_size //= 2
        log.warning("%s; going on with --batch-size %d", err, self.batch_size)


def redraw_grouped(caller: ModelCaller, edits: list[Edit], crops: list[Crop]) -> list[Outcome]:
    """Redraw any edits: grouped by settings (as the engine's buckets), results in input order."""
    groups: dict[tuple, list[int]] = {}
    for i, edit in enumerate(edits):
        groups.setdefault(edit.settings_key, []).append(i)
    outcomes: list[Outcome | None] = [None] * len(edits)
    for indexes in groups.values():
        done = caller.redraw([edits[i] for i in indexes], [crops[i] for i in indexes])
        for i, outcome in zip(indexes, done, strict=True):
            outcomes[i] = outcome
    return [o for o in outcomes if o is not None]


def _outcome(edit: Edit, result: np.ndarray) -> Outcome:
    if invalid_output(result):
        err = ItemError("model-output-invalid", f"black or NaN after {RETRIES} retries")
        return Outcome(edit, None, err)
    return Outcome(edit, result)

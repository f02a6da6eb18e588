"""The batch function: redraw a group of crops that share model settings.

Used as it is by the local engine, by ``preview`` and by any other executor, so every caller
gets the same padding, out-of-memory halving and invalid-output retries:

* which edits share a call is fixed by the plan (:mod:`inpaint_aug.pipeline.chunks`), so a
  resumed run repeats the same calls; calls are padded to ``batch_size`` (repeating the last
  request) only with ``pad`` (``--compile``: one batch shape, one compile);
* on out-of-memory the batch size is halved for the rest of the run (logged); quality settings
  are never changed;
* an all-black (or NaN) result is retried with another deterministic seed, ``RETRIES`` times;
  the seed that made the result is the one recorded;
* with a verifier, each result is checked against its label; a rejected redraw is tried again
  with new deterministic seeds (``verify_retries`` times), then marked rejected.

Example:
    >>> caller = ModelCaller(inpainter, batch_size=4)  # doctest: +SKIP
    >>> outcomes = caller.redraw(edits, crops)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from inpaint_aug.errors import ItemError, OutOfMemory, OutputError
from inpaint_aug.pipeline.backend import Inpainter, InpaintRequest
from inpaint_aug.pipeline.control import edge_map
from inpaint_aug.pipeline.crops import Crop
from inpaint_aug.pipeline.plan import Edit
from inpaint_aug.pipeline.verify import Box, Verdict, Verifier, VerifyRequest

log = logging.getLogger(__name__)
RETRIES = 2
VERIFY_SEED_OFFSET = 10  # verification retries use retry_seed(plan seed, 10 + k)


@dataclass(frozen=True)
class Outcome:
    """What became of one edit: its result, or why there is none.

    ``edit`` carries the seed that was really used (a retry changes it). With a verifier,
    ``verdict`` is its last answer and ``attempts`` the redraws it took; a redraw still
    rejected after every retry has ``rejected`` set, its last ``result`` and the ``error`` that
    says why.
    """

    edit: Edit
    result: np.ndarray | None
    error: ItemError | None = None
    verdict: Verdict | None = None
    attempts: int = 1
    rejected: bool = False


def invalid_output(result: np.ndarray) -> bool:
    """All-black output (also what the backend returns for NaN): the model failed."""
    return int(result.max()) <= 2


def retry_seed(seed: int, attempt: int) -> int:
    """Another deterministic seed for a retry after an invalid model output."""
    return (seed + 1_000_003 * attempt) & 0x7FFFFFFF


def request_for(edit: Edit, crop: Crop) -> InpaintRequest:
    """The model request of one edit's crop (with shape control: its edge map and scale)."""
    control = edit.control
    return InpaintRequest(
        crop.pixels,
        crop.mask,
        edit.prompt,
        edit.negative_prompt,
        edit.seed,
        edit.steps,
        edit.guidance,
        edit.strength,
        edge_map(crop.pixels) if control is not None else None,
        control.scale if control is not None else 0.0,
    )


def call_padded(
    inpainter: Inpainter, requests: list[InpaintRequest], batch_size: int
) -> list[np.ndarray]:
    """One model call padded to ``batch_size``; returns one result per request.

    Example:
        >>> class Count:
        ...     def inpaint(self, batch):
        ...         return list(range(len(batch)))
        >>> call_padded(Count(), ["a", "b"], 4), call_padded(Count(), ["a", "b"], 2)
        ([0, 1], [0, 1])
    """
    padded = requests + [requests[-1]] * (batch_size - len(requests))
    return list(inpainter.inpaint(padded)[: len(requests)])


class ModelCaller:
    """Runs groups of same-settings crops through one model, in batches.

    Args:
        inpainter: the model.
        batch_size: crops per model call at most; halved on out-of-memory.
        verifier: checks each result against its label (``None``: no check).
        verify_retries: new seeds tried for a rejected redraw.
        labels: class names by category id, the verifier's text.
        pad: pad every call to ``batch_size`` (one shape, for ``--compile``).

    Attributes:
        seconds: model time spent so far.
        seconds_verify: verifier time spent so far.
    """

    def __init__(
        self,
        inpainter: Inpainter,
        batch_size: int,
        verifier: Verifier | None = None,
        verify_retries: int = 2,
        labels: Mapping[Any, str] | None = None,
        pad: bool = False,
    ) -> None:
        self.inpainter = inpainter
        self.batch_size = batch_size
        self.verifier = verifier
        self.verify_retries = verify_retries
        self.labels = dict(labels or {})
        self.pad = pad
        self.seconds = 0.0
        self.seconds_verify = 0.0

    def redraw(
        self, edits: Sequence[Edit], crops: Sequence[Crop], boxes: Sequence[Box] | None = None
    ) -> list[Outcome]:
        """Redraw edits that share ``settings_key``; retry invalid outputs with new seeds.

        With a verifier and the objects' ``boxes`` (in crop pixels), every valid result is
        verified, and rejected ones are redrawn with new seeds up to ``verify_retries`` times.
        """
        outcomes = self._inpaint(list(edits), crops)
        if self.verifier is None or boxes is None:
            return outcomes
        return self._verified(outcomes, list(crops), list(boxes))

    def _inpaint(self, edits: list[Edit], crops: Sequence[Crop]) -> list[Outcome]:
        """One model pass over ``edits``, with the invalid-output retries."""
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

    def _verified(
        self, outcomes: list[Outcome], crops: list[Crop], boxes: list[Box]
    ) -> list[Outcome]:
        """Verify valid results; redraw rejected ones with new seeds; mark what stays rejected."""
        seeds = [o.edit.seed for o in outcomes]
        todo = [i for i, o in enumerate(outcomes) if o.result is not None]
        for attempt in range(self.verify_retries + 1):
            verdicts = self._verify(
                [outcomes[i] for i in todo], [crops[i] for i in todo], [boxes[i] for i in todo]
            )
            failed = []
            for i, verdict in zip(todo, verdicts, strict=True):
                outcomes[i] = replace(outcomes[i], verdict=verdict, attempts=attempt + 1)
                if not verdict.passed:
                    failed.append(i)
            if not failed or attempt == self.verify_retries:
                break
            edits = [
                replace(outcomes[i].edit, seed=retry_seed(seeds[i], VERIFY_SEED_OFFSET + attempt))
                for i in failed
            ]
            again = self._inpaint(edits, [crops[i] for i in failed])
            for i, outcome in zip(failed, again, strict=True):
                outcomes[i] = replace(outcome, attempts=attempt + 2)
            todo = [i for i in failed if outcomes[i].result is not None]
        return [_final(o) for o in outcomes]

    def _verify(
        self, outcomes: list[Outcome], crops: list[Crop], boxes: list[Box]
    ) -> list[Verdict]:
        """The verifier's verdicts for valid results, timed apart from the model."""
        if not outcomes:
            return []
        assert self.verifier is not None
        requests = [
            VerifyRequest(
                o.result, c.pixels, b, self.labels.get(o.edit.category_id, str(o.edit.category_id))
            )
            for o, c, b in zip(outcomes, crops, boxes, strict=True)
        ]
        t0 = time.perf_counter()
        try:
            return list(self.verifier.verify(requests))
        finally:
            self.seconds_verify += time.perf_counter() - t0

    def call(self, requests: list[InpaintRequest]) -> list[np.ndarray]:
        """Model calls of at most ``batch_size`` (padded with ``pad``), halving on out-of-memory.

        Raises:
            OutputError: even a batch of one does not fit.
        """
        results: list[np.ndarray] = []
        start = 0
        while start < len(requests):
            chunk = requests[start : start + self.batch_size]
            t0 = time.perf_counter()
            try:
                size = self.batch_size if self.pad else len(chunk)
                results += call_padded(self.inpainter, chunk, size)
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
        log.warning(
            "%s; going on with --batch-size %d (planned batches are split from here: results "
            "may differ from an unsplit run by float rounding)",
            err,
            self.batch_size,
        )


def redraw_grouped(
    caller: ModelCaller, edits: list[Edit], crops: list[Crop], boxes: list[Box] | None = None
) -> list[Outcome]:
    """Redraw any edits: grouped by settings (as the engine's buckets), results in input order."""
    groups: dict[tuple, list[int]] = {}
    for i, edit in enumerate(edits):
        groups.setdefault(edit.settings_key, []).append(i)
    outcomes: list[Outcome | None] = [None] * len(edits)
    for indexes in groups.values():
        part = [boxes[i] for i in indexes] if boxes is not None else None
        done = caller.redraw([edits[i] for i in indexes], [crops[i] for i in indexes], part)
        for i, outcome in zip(indexes, done, strict=True):
            outcomes[i] = outcome
    return [o for o in outcomes if o is not None]


def _final(outcome: Outcome) -> Outcome:
    """Mark a result its verifier still rejects after every retry, with the reason."""
    verdict = outcome.verdict
    if verdict is None or verdict.passed or outcome.result is None:
        return outcome
    detail = (
        f"score {verdict.score:.3f} under {verdict.threshold:.3f} after "
        f"{outcome.attempts} redraw(s); source object {verdict.source_score:.3f}"
    )
    return replace(outcome, rejected=True, error=ItemError("verify-rejected", detail))


def _outcome(edit: Edit, result: np.ndarray) -> Outcome:
    if invalid_output(result):
        err = ItemError("model-output-invalid", f"black or NaN after {RETRIES} retries")
        return Outcome(edit, None, err)
    return Outcome(edit, result)

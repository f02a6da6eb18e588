"""The Ray actor: one model loaded once, then the local engine's own work on each chunk.

:class:`ChunkWorker` is the callable class ``map_batches`` runs in each actor. Its
``__init__`` checks that the driver's token file under OUT is readable here (OUT must be
shared), reads the dataset, and loads the models by the run's own path
(:func:`~inpaint_aug.pipeline.models.load_models`). Each call gets one row, one pickled chunk
and the numbers of its images finished earlier, and runs it through the same engine as a local
run (read, cut, inpaint, verify, paste, encode, atomic write under OUT with the same names):
the journal is a :class:`Collector`, and what it collected goes back as the row. This module
never imports ray: it is what runs inside the actor, not what drives it.

Example:
    >>> events = Collector()
    >>> events.end_without_record(3); events.events
    [('ended', 3)]
"""

from __future__ import annotations

import pickle
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_aug.dataset.coco import load_coco
from inpaint_aug.errors import OutputError
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.chunks import Chunk
from inpaint_aug.pipeline.execute import make_engine
from inpaint_aug.pipeline.models import load_models
from inpaint_aug.pipeline.plan import Skip
from inpaint_aug.pipeline.records import ImageRecord

Event = tuple[str, Any]  # ("record", ImageRecord) | ("skip", Skip) | ("ended", number)


class Collector:
    """A journal stand-in that keeps the engine's entries, in order, for the driver."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add_record(self, record: ImageRecord) -> None:
        """A finished image (its file is already written)."""
        self.events.append(("record", record))

    def add_skip(self, skip: Skip) -> None:
        """A skip found while running."""
        self.events.append(("skip", skip))

    def end_without_record(self, job_number: int) -> None:
        """An image that ended with nothing written."""
        self.events.append(("ended", job_number))


def check_token(path: str, content: str) -> None:
    """Read back a token file another machine wrote under OUT.

    Raises:
        OutputError: it is missing or differs: OUT is not the same folder here.
    """
    try:
        ok = Path(path).read_text(encoding="utf-8") == content
    except OSError:
        ok = False
    if not ok:
        raise OutputError(
            f"{Path(path).parents[2]}: --out is not shared with {socket.gethostname()} (the "
            f"token file {path} is not readable there); put OUT on a filesystem every Ray "
            "node mounts at the same path"
        )


def answer_token(path: str, content: str, reply: str) -> str:
    """A worker's side of the shared-folder check: read the driver's token, write a reply."""
    check_token(path, content)
    answer = Path(path).with_name(f"{Path(path).name}.{socket.gethostname()}")
    answer.write_text(reply, encoding="utf-8")
    return str(answer)


class ChunkWorker:
    """The actor's callable: loads the models once, then runs one chunk per call.

    Args:
        settings: the run's options as ``RunOptions.to_dict`` gives them (absolute paths).
        token: the driver's token file and its content (the shared-folder check).
    """

    def __init__(self, settings: dict[str, Any], token: tuple[str, str]) -> None:
        check_token(*token)
        options = RunOptions.from_dict(settings)
        ds = load_coco(options.coco, options.images)
        models = load_models(options)
        self.seconds_load = models.seconds_load
        self.engine = make_engine(ds, options, models, Collector(), None)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run each row's chunk; return its events, model seconds and load seconds."""
        rows = [self.run_chunk(*pickle.loads(data)) for data in batch["chunk"]]
        return {key: np.array([r[key] for r in rows], dtype=object) for key in rows[0]}

    def run_chunk(self, chunk: Chunk, ended: frozenset[int]) -> dict[str, Any]:
        """The local engine's work on one chunk (images in ``ended`` computed, not written)."""
        engine, caller = self.engine, self.engine.caller
        engine.journal = collector = Collector()
        model, verify, t0 = caller.seconds, caller.seconds_verify, time.perf_counter()
        engine.process([chunk], None, ended)
        loaded, self.seconds_load = self.seconds_load, 0.0  # reported once per actor
        return {
            "events": pickle.dumps(collector.events),
            "seconds_model": caller.seconds - model,
            "seconds_verify": caller.seconds_verify - verify,
            "seconds_chunk": time.perf_counter() - t0,
            "seconds_load": loaded,
            "finished_at": time.time(),  # wall clock, for the driver's timing figures
        }

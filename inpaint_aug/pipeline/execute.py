"""Redraw what is left, on the local engine; what every executor shares around the engine.

* :func:`unfinished_chunks`: the run's chunks (planned over every task, so composition never
  depends on what is left) that still hold an unfinished image;
* :func:`make_engine`: the engine and batch function around loaded models, as the local run
  and each remote worker build them;
* :func:`stoppable`: a signal stops the work cleanly after the current batch, a second one at
  once, with the message that says what is kept.

Example:
    >>> stats, seconds = execute_local(ds, tasks, options, given, journal, None)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from inpaint_aug.dataset.coco import CocoDataset
from inpaint_aug.errors import Interrupted
from inpaint_aug.options import RunOptions
from inpaint_aug.pipeline.backend import Inpainter
from inpaint_aug.pipeline.batch import ModelCaller
from inpaint_aug.pipeline.chunks import Chunk, plan_chunks
from inpaint_aug.pipeline.engine import Engine, EngineSettings, EngineStats, helper_threads
from inpaint_aug.pipeline.models import Models, load_models
from inpaint_aug.pipeline.progress import Progress
from inpaint_aug.pipeline.records import Task
from inpaint_aug.pipeline.signals import interrupt_on_signals, stop_on_signals
from inpaint_aug.pipeline.verify import Verifier

T = TypeVar("T")


def unfinished_chunks(tasks: list[Task], batch_size: int, ended: set[int]) -> list[Chunk]:
    """The run's chunks (planned over every task) that hold an image not yet finished."""
    chunks = plan_chunks(tasks, batch_size)
    return [c for c in chunks if any(t.number not in ended for t in c.tasks)]


def kept_message(ended: int, tasks: int) -> str:
    """What an interrupted run keeps, and how to continue it."""
    return (
        f"after {ended} of {tasks} images; the finished ones are kept: run "
        "the same command again (or with --resume) to continue"
    )


def second_signal(caught: list[str]) -> str:
    """The signal that stopped a run at once, and the one before it.

    Example:
        >>> second_signal(["SIGINT", "SIGINT"]), second_signal(["SIGTERM", "SIGINT"])
        ('a second SIGINT', 'SIGINT (after SIGTERM)')
    """
    first, last = (caught[0], caught[-1]) if caught else ("SIGINT", "SIGINT")
    return f"a second {last}" if first == last else f"{last} (after {first})"


def stoppable(work: Callable[[threading.Event], T], kept: Callable[[], str]) -> T:
    """Run ``work(stop)``: a signal sets ``stop``; a second one stops at once.

    Raises:
        Interrupted: after a signal, saying what is kept (``kept()``) and how to continue.
    """
    stop = threading.Event()
    caught: list[str] = []
    try:
        with stop_on_signals(stop) as caught:
            result = work(stop)
    except KeyboardInterrupt:  # a second signal: stop now, not after the batch
        raise Interrupted(f"stopped at once by {second_signal(caught)} {kept()}") from None
    if caught:
        raise Interrupted(f"stopped by {caught[0]} {kept()}")
    return result


def execute_local(
    ds: CocoDataset,
    tasks: list[Task],
    options: RunOptions,
    given: Models | tuple[Inpainter | None, Verifier | None],
    journal: Any,
    progress: Progress | None,
) -> tuple[EngineStats, float]:
    """Redraw the chunks the journal has not finished; stop cleanly on a signal, at once on two.

    Returns the engine's figures and the seconds spent loading models here (on resume).
    """
    todo = unfinished_chunks(tasks, options.batch_size, journal.ended)
    if not todo:
        return EngineStats(0.0, 0), 0.0
    kept = lambda: kept_message(len(journal.ended), len(tasks))  # noqa: E731
    if isinstance(given, Models):
        models, seconds_load = given, 0.0
    else:
        with interrupt_on_signals(f"while loading the model; {kept()}"):
            models = load_models(options, *given)
        seconds_load = models.seconds_load
    engine = make_engine(ds, options, models, journal, progress)
    total = sum(len(t.job.edits) for t in tasks)

    def work(stop: threading.Event) -> EngineStats:
        engine.stop = stop
        return engine.process(todo, total, journal.ended)

    return stoppable(work, kept), seconds_load


def make_engine(
    ds: CocoDataset, options: RunOptions, models: Models, journal: Any, progress: Progress | None
) -> Engine:
    """The engine around the loaded models (its helper threads sized by :func:`helper_threads`)."""
    labels = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    caller = ModelCaller(
        models.inpainter,
        options.batch_size,
        models.verifier,
        options.verify.retries,
        labels,
        pad=options.compile,
    )
    device = str(getattr(models.inpainter, "device", "cpu"))
    torch = sys.modules.get("torch")  # loaded with the model (this module never imports it)
    threads = torch.get_num_threads() if torch is not None else None
    workers = helper_threads(options.workers, device, threads, os.cpu_count() or 1)
    settings = EngineSettings(workers, max(4, options.batch_size))
    rest = (Path(options.out), settings, progress, options.verify.on_reject)
    return Engine(ds, options.plan, caller, journal, *rest)

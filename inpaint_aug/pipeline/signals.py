"""SIGINT and SIGTERM during a run: an exception while loading, a clean stop while working.

While working, the first signal asks for a clean stop (the current batch finishes); a second one
(Ctrl-C twice) raises ``KeyboardInterrupt`` at once, which the run reports as
:class:`~inpaint_aug.errors.Interrupted`. Either way nothing is left half-written: every file is
written atomically and the journal's torn last line is ignored, so the run can be continued.

Example:
    >>> with stop_on_signals(threading.Event()) as caught:  # doctest: +SKIP
    ...     engine.process(tasks)
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from inpaint_aug.errors import Interrupted

log = logging.getLogger(__name__)


@contextmanager
def handling_signals(handler: Callable[[int, Any], None]) -> Iterator[bool]:
    """Install ``handler`` for SIGINT and SIGTERM, restoring the old ones afterwards.

    Yields whether it could (signals can only be handled in the main thread).
    """
    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (a notebook worker, say)
        yield False
        return
    try:
        yield True
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextmanager
def interrupt_on_signals(when: str) -> Iterator[None]:
    """SIGINT/SIGTERM become :class:`Interrupted` here.

    The handler raises ``KeyboardInterrupt``, a ``BaseException``, because library code that
    runs meanwhile (imports, model loading) may catch ``Exception``.
    """
    caught: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    with handling_signals(handler):
        try:
            yield
        except KeyboardInterrupt:
            raise Interrupted(f"stopped by {(caught or ['SIGINT'])[0]} {when}") from None


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """Turn SIGINT/SIGTERM into a clean stop: ``stop`` is set, the work finishes its batch.

    A second signal raises ``KeyboardInterrupt`` in the main thread at once (the caller turns it
    into :class:`Interrupted`).

    Yields the names of the signals caught (empty when none was).
    """
    caught: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        if len(caught) > 1:
            raise KeyboardInterrupt
        stop.set()
        log.warning(
            "%s: finishing the current batch, then stopping (press Ctrl-C again to stop at once)",
            caught[0],
        )

    with handling_signals(handler):
        yield caught

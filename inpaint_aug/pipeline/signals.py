"""SIGINT and SIGTERM during a run: an exception while loading, a clean stop while working.

Example:
    >>> with stop_on_signals(threading.Event()) as caught:  # doctest: +SKIP
    ...     engine.process(tasks)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from inpaint_aug.errors import Interrupted


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

    Yields the names of the signals caught (empty when none was).
    """
    caught: list[str] = []

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        stop.set()

    with handling_signals(handler):
        yield caught

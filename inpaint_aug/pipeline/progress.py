"""Progress of a run: a bar on a terminal or in a notebook, plain lines anywhere else.

A tqdm bar only draws on a terminal; under ``nohup``, a scheduler or a pipe it would show
nothing for hours. So:

* :class:`BarProgress`: a ``tqdm.auto`` bar (a terminal, or a widget in a notebook).
* :class:`LineProgress`: a plain line (objects done of total, objects/s, ETA) every
  :data:`INTERVAL` seconds (or ``$INPAINT_AUG_PROGRESS_INTERVAL``) and one at the end.
* :func:`auto_progress` picks one of them for a stream; :func:`resolve_progress` is what
  ``run(options, progress=...)`` makes of its argument (``None``: on, ``False``: silent).
* :func:`log_plan_skips` logs what planning decided not to redraw, one warning line per kind.

Pure Python: tqdm is imported only when a bar is drawn.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> report = LineProgress(out, interval=0.0)
    >>> report(1, 4); report(3, 4); report(4, 4)
    >>> out.getvalue().splitlines()[0].startswith("inpainting: 3/4 objects (75%)")
    True
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from inpaint_aug.choices import Mode
from inpaint_aug.errors import OptionsError
from inpaint_aug.pipeline.plan import Skip

log = logging.getLogger(__name__)

INTERVAL = 30.0  # seconds between two plain progress lines
INTERVAL_ENV = "INPAINT_AUG_PROGRESS_INTERVAL"
LABEL = "inpainting"
UNIT = "objects"  # what progress counts; "backgrounds" in --mode background (see unit_for)
SHORT = {"objects": "obj", "backgrounds": "bg"}  # a bar's unit
KINDS = {"annotation": "annotations dropped", "edit": "not redrawn", "image": "images not written"}

Progress = Callable[[int, int], None]
ProgressArg = Progress | bool | None


def progress_interval() -> float:
    """Seconds between plain lines: ``$INPAINT_AUG_PROGRESS_INTERVAL`` if valid, else INTERVAL."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, ""))
    except ValueError:
        return INTERVAL
    return value if value >= 0 else INTERVAL


def format_duration(seconds: float) -> str:
    """``42s``, ``5m24s`` or ``3h07m``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class LineProgress:
    """Plain progress lines for a stream that is no terminal (a pipe, a log file, nohup).

    A line is printed when a call comes at least ``interval`` seconds after the last line
    (or the start) and the rate is known, and one when the last object is done. A run that
    stops early prints none at :meth:`close`: its error (one line) is the last word. The rate
    counts from the first call, so that the model loading and a resumed run's earlier objects
    do not distort it.

    Args:
        stream: where lines go (``None``: ``sys.stderr`` at the time of writing).
        interval: seconds between lines (``None``: :func:`progress_interval`).
        clock: seconds, monotonic (tests pass a fake one).
        unit: what is counted, plural (``backgrounds`` in ``--mode background``).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        unit: str = UNIT,
    ) -> None:
        self.stream = stream
        self.unit = unit
        self.interval = progress_interval() if interval is None else interval
        self.clock = clock
        self.started = self.last_line = clock()
        self.first: tuple[float, int] | None = None
        self.state: tuple[float, int, int] | None = None
        self.closed = False

    def __call__(self, done: int, total: int) -> None:
        """Record ``done`` of ``total`` objects; print a line when it is time."""
        now = self.clock()
        if self.closed:
            return
        if self.first is None:
            self.first = (now, done)
        self.state = (now, done, total)
        due = now - self.last_line >= self.interval and self.rate() is not None
        if done >= total or due:
            self._print()

    def close(self) -> None:
        """Print no more lines."""
        self.closed = True

    def rate(self) -> float | None:
        """Objects per second since the first call (``None`` before a second one)."""
        if self.state is None or self.first is None:
            return None
        now, done, _ = self.state
        t1, d1 = self.first
        return (done - d1) / (now - t1) if now > t1 and done > d1 else None

    def line(self) -> str:
        """The progress line of the last state."""
        assert self.state is not None
        now, done, total = self.state
        rate = self.rate()
        pct = f" ({100 * done // total}%)" if total else ""
        speed = f"{rate:.2f} {self.unit}/s" if rate else f"? {self.unit}/s"
        if done >= total:
            tail = f"done in {format_duration(now - self.started)}"
        else:
            tail = f"ETA {format_duration((total - done) / rate)}" if rate else "ETA ?"
        return f"{LABEL}: {done}/{total} {self.unit}{pct}, {speed}, {tail}"

    def _print(self) -> None:
        stream = self.stream or sys.stderr
        print(self.line(), file=stream, flush=True)
        self.last_line = self.clock()
        if self.state is not None and self.state[1] >= self.state[2]:
            self.close()  # the end line is printed once


class BarProgress:
    """A ``tqdm.auto`` bar (objects/s, ETA), made at the first call and closed at the end.

    Args:
        stream: where a terminal bar draws (``None``: ``sys.stderr``).
        leave: keep the finished bar on screen.
        unit: what is counted, plural (the bar shows ``obj/s`` or ``bg/s``).
    """

    def __init__(self, stream: TextIO | None = None, leave: bool = True, unit: str = UNIT) -> None:
        self.stream = stream
        self.leave = leave
        self.unit = unit
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        """Move the bar to ``done`` of ``total``; close it when all are done."""
        if self.bar is None:
            from tqdm.auto import tqdm

            file = self.stream or sys.stderr
            self.bar = tqdm(
                total=total,
                unit=SHORT.get(self.unit, self.unit),
                desc=LABEL,
                leave=self.leave,
                file=file,
            )
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        """Close the bar (again is harmless)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (the test tqdm.autonotebook makes)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an open terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def auto_progress(
    stream: TextIO | None = None, leave: bool = True, unit: str = UNIT
) -> LineProgress | BarProgress:
    """A bar on a terminal or in a notebook; plain lines for anything else (a pipe, a file).

    Args:
        stream: where progress goes (``None``: ``sys.stderr``).
        leave: keep a finished bar on screen.
        unit: what is counted, plural (see :func:`unit_for`).
    """
    if in_notebook() or is_terminal(stream or sys.stderr):
        return BarProgress(stream, leave, unit)
    return LineProgress(stream, unit=unit)


def unit_for(mode: Mode) -> str:
    """What a run's progress counts: ``objects``, or ``backgrounds`` in ``--mode background``.

    Example:
        >>> unit_for(Mode.background), unit_for(Mode.object)
        ('backgrounds', 'objects')
    """
    return "backgrounds" if mode is Mode.background else UNIT


def resolve_progress(progress: ProgressArg, unit: str = UNIT) -> Progress | None:
    """What ``run(options, progress=...)`` reports to.

    Args:
        progress: ``None`` or ``True``: :func:`auto_progress` (a bar in a notebook or on a
            terminal, plain lines elsewhere); ``False``: nothing; a callable: called with
            ``(objects_done, objects_total)`` after each batch.
        unit: what the made bar or lines count (see :func:`unit_for`).

    Raises:
        OptionsError: anything else.
    """
    if progress is False:
        return None
    if progress is None or progress is True:
        return auto_progress(unit=unit)
    if callable(progress):
        return progress
    raise OptionsError("progress", progress, "None, True, False or a callable(done, total)")


def log_plan_skips(skips: Iterable[Skip], details: str = "run.json") -> None:
    """Log what planning decided not to do: one warning per kind, its reasons with counts.

    Example: ``not redrawn: too-small 13, crowd 1 (see run.json)``.

    Args:
        skips: the skips :func:`~inpaint_aug.pipeline.plan.plan_dataset` returned.
        details: where every skip is listed, for the message.
    """
    counts: dict[str, Counter[str]] = {}
    for skip in skips:
        if skip.kind == "class":  # a class below its target: the line says why
            log.warning("%s (see %s)", skip.detail, details)
            continue
        counts.setdefault(skip.kind, Counter())[skip.reason] += 1
    order = [*KINDS, *sorted(set(counts) - set(KINDS))]
    for kind, reasons in sorted(counts.items(), key=lambda item: order.index(item[0])):
        listed = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
        log.warning("%s: %s (see %s)", KINDS.get(kind, f"{kind} skipped"), listed, details)

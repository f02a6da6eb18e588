"""Every prompts-file entry's steps and strength against the run's: one denoising step at least.

A class's ``steps:`` and ``strength:`` beat ``--steps`` and ``--strength``; diffusers runs
``int(steps x strength)`` denoising steps, and none is an error deep inside a model call. So
the pairs are checked once the prompts file is read, before any work, and the message says
which values to raise: the entry's own, else the flags.

Example:
    >>> from types import SimpleNamespace
    >>> _schedule_fix(SimpleNamespace(steps=None, strength=0.1))
    'raise its strength: in the prompts file, or --steps'
"""

from __future__ import annotations

from typing import Any

from inpaint_aug.checks import check_schedule
from inpaint_aug.choices import Mode
from inpaint_aug.dataset.prompts import PromptBook, PromptProblems
from inpaint_aug.errors import OptionsError
from inpaint_aug.options import PlanSettings


def check_schedules(book: PromptBook, settings: PlanSettings) -> None:
    """Check that every class's steps and strength give diffusers a denoising step.

    A class's values are its prompts-file overrides, else the run's; checked before any work.
    Classes that share one entry (those ``default`` covers) are reported together.

    Raises:
        PromptProblems: every entry whose values give no step; the message names the classes.
    """
    groups: dict[int, tuple[Any, list[str]]] = {}  # by entry: specs hold dicts, unhashable
    for cid, spec in book.by_category.items():
        if not spec.skip and (spec.steps is not None or spec.strength is not None):
            groups.setdefault(id(spec), (spec, []))[1].append(repr(book.names.get(cid, cid)))
    problems = []
    if settings.mode is Mode.background and book.background is None:
        problems.append(
            "--mode background needs a 'background:' section with the new scene's prompt, "
            "e.g. background: {prompt: 'a {surface}', vars: {surface: [beach, street]}}"
        )
    elif settings.mode is Mode.background:
        groups[id(book.background)] = (book.background, ["'background'"])
    for spec, names in groups.values():
        steps = spec.steps or settings.steps
        strength = spec.strength if spec.strength is not None else settings.strength
        label = f"class {names[0]}" if len(names) == 1 else f"classes {', '.join(names)}"
        label = "background" if spec is book.background else label
        try:
            where = f"{label}: steps {steps} x strength {strength:g}"
            check_schedule(steps, strength, where, _schedule_fix(spec))
        except OptionsError as err:
            problems.append(str(err))
    if problems:
        raise PromptProblems(book.path, problems)


def _schedule_fix(spec: Any) -> str:
    """What to raise for an entry: its own ``steps:``/``strength:`` beat the command line's."""
    own = [k for k in ("steps", "strength") if getattr(spec, k) is not None]
    flags = [f"--{k}" for k in ("steps", "strength") if k not in own]
    if not own:
        return "raise --steps or --strength"
    mine = " or ".join(f"{k}:" for k in own)
    return f"raise its {mine} in the prompts file" + (f", or {flags[0]}" if flags else "")

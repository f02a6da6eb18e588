"""Checks of single option values: integers, numbers in a range, a denoising schedule.

Each raises one :class:`~inpaint_aug.errors.OptionsError` naming the option as its flag, the
value and what is allowed.

Example:
    >>> check_int("batch_size", 0, 1)
    Traceback (most recent call last):
    ...
    inpaint_aug.errors.OptionsError: --batch-size 0: expected an integer >= 1
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from inpaint_aug.errors import OptionsError


def flag(name: str) -> str:
    """The command-line flag of an option field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def check_int(name: str, value: Any, low: int = 0, optional: bool = False) -> None:
    """Refuse a value that is not an integer ``>= low`` (``None`` too, when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise OptionsError(flag(name), value, f"an integer >= {low}")


def check_number(
    name: str, value: Any, low: float, high: float = math.inf, above: bool = False
) -> None:
    """Refuse a value that is not a finite number in ``[low, high]`` (``(low, high]``: above).

    >>> check_number("strength", 0.0, 0.0, 1.0, above=True)
    Traceback (most recent call last):
    ...
    inpaint_aug.errors.OptionsError: --strength 0.0: expected a number > 0 and <= 1
    """
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high or (above and value == low):
        span = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        if above:
            span = f"> {low:g} and <= {high:g}" if math.isfinite(high) else f"> {low:g}"
        raise OptionsError(flag(name), value, f"a number {span}")


def check_schedule(
    steps: int, strength: float, where: str = "", fix: str = "raise --steps or --strength"
) -> None:
    """Refuse steps and strength that give diffusers no denoising step.

    diffusers runs ``int(steps * strength)`` denoising steps; fewer than one is an error.

    Args:
        steps: denoising steps.
        strength: inpainting strength.
        where: who set them, for the message (the command line when empty).
        fix: what to raise, for the message (a prompts-file entry's own values beat the flags).
    """
    if int(steps * strength) >= 1:
        return
    who = where or f"--steps {steps} with --strength {strength:g}"
    raise OptionsError.free(
        f"{who}: diffusers runs int(steps x strength) = {int(steps * strength)} denoising steps;"
        f" {fix} so that it is at least 1"
    )

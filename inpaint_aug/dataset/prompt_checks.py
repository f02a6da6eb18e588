"""The checks of single prompts-file values, and the collector of the problems they find.

Each checker returns the checked value or raises :class:`Problem` with a message that names
the key (``classes.car.strength is 'high', expected ...``), never the file. :class:`Found`
runs checkers and collects their problems, so :mod:`inpaint_aug.dataset.prompts` can report
every problem of a file at once.

Example:
    >>> found = Found()
    >>> found.check(strings, [], "default.prompt", default=("",))
    ('',)
    >>> found.problems
    ['default.prompt must be a string or a non-empty list of strings, got []']
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Problem(Exception):
    """One problem of a prompts file, its message naming the key; collected by :class:`Found`."""


@dataclass
class Found:
    """The problems found so far in one file, in the order they were found."""

    problems: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        """Record one problem."""
        self.problems.append(message)

    def check(self, checker: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """``checker(*args)``; on a :class:`Problem`, record it and return ``default``."""
        try:
            return checker(*args)
        except Problem as problem:
            self.add(str(problem))
            return default


def or_empty(raw: dict[Any, Any], key: str) -> Any:
    """``raw[key]``, or ``{}`` when the key is absent or left empty (``None``)."""
    value = raw.get(key)
    return {} if value is None else value


def strings(raw: Any, where: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings (numbers become strings), as a tuple."""
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not values:
        raise Problem(f"{where} must be a string or a non-empty list of strings, got {raw!r}")
    for v in values:
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise Problem(f"{where} holds {v!r}, expected a string")
    return tuple(str(v) for v in values)


def parse_vars(raw: Any, where: str, found: Found) -> dict[str, tuple[str, ...]]:
    """Placeholder values: a mapping of name to a non-empty list of strings (or one string).

    A bad list is reported and stands in as ``("",)``, so its uses are not reported again.
    """
    if not isinstance(raw, dict):
        found.add(f"{where} must be a mapping of name to a list of strings")
        return {}
    return {
        str(name): found.check(strings, values, f"{where}.{name}", default=("",))
        for name, values in raw.items()
    }


def skip_flag(raw: dict, where: str) -> bool:
    """The entry's ``skip`` flag: true or false (false when absent)."""
    skip = raw.get("skip", False)
    if not isinstance(skip, bool):
        raise Problem(f"{where}.skip must be true or false, got {skip!r}")
    return skip


def number(
    raw: dict, key: str, where: str, default: float | None, low: float, high: float
) -> float | None:
    """An optional float setting within ``(low, high]`` (``[0, high]`` for guidance)."""
    if key not in raw:
        return default
    value = raw[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (low <= value <= high) or (key == "strength" and value <= 0):
        bounds = f"0 < {key} <= 1" if key == "strength" else f"{low} <= {key} <= {high}"
        raise Problem(f"{where}.{key} is {value!r}, expected a number with {bounds}")
    return float(value)


def steps(raw: dict, where: str, default: int | None) -> int | None:
    """An optional number of denoising steps, an integer 1..1000."""
    if "steps" not in raw:
        return default
    value = raw["steps"]
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise Problem(f"{where}.steps is {value!r}, expected an integer 1..1000")
    return value


def target(raw: dict, where: str, skip: bool, default: int | None) -> int | None:
    """An optional per-class target of redraws, an integer >= 1 (not on a skipped class)."""
    if "target" not in raw:
        return default
    value = raw["target"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Problem(f"{where}.target is {value!r}, expected an integer >= 1 (redraws wanted)")
    if skip:
        raise Problem(f"{where}.target is set, but skip: true: a skipped class is never redrawn")
    return value


def background_entry(raw: Any) -> None:
    """The ``background`` entry is a class entry without ``skip``, ``target`` or ``{name}``."""
    if not isinstance(raw, dict):
        return  # reported as any entry that is not a mapping
    for key in sorted({"skip", "target"} & set(raw)):
        raise Problem(f"background.{key}: not a background setting (it is a class setting)")
    for key in ("prompt", "negative"):
        values = raw.get(key) if isinstance(raw.get(key), list) else [raw.get(key)]
        if any("{name}" in str(v) for v in values):
            raise Problem(f"background.{key}: {{name}} is a class name; the background has none")


def check_placeholders(template: str, defined_vars: set[str], where: str) -> None:
    """Every ``{placeholder}`` must be ``name`` or a defined var; braces must balance.

    The background has no ``{name}`` (:func:`background_entry` says so): its message lists
    only its vars.
    """
    defined = defined_vars | {"name"}
    shown = sorted(defined_vars if where == "background" else defined)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as err:
        raise Problem(f"{where}: bad template {template!r}: {err}") from None
    for name in fields:
        if name not in defined:
            raise Problem(
                f"{where}: placeholder {{{name}}} in {template!r} is not defined; "
                f"defined: {shown or 'none'} (add it under 'vars')"
            )


def class_id(key: Any, ids_by_name: Mapping[str, list[int]], categories: Mapping[int, str]) -> int:
    """The category id one ``classes`` key addresses: an id, else a unique category name."""
    if isinstance(key, bool):  # YAML 1.1 reads yes/no/on/off/true/false keys as booleans
        raise Problem(
            f"classes.{key}: YAML reads this key as a boolean, not a class; "
            "quote the class name (e.g. 'yes':)"
        )
    if isinstance(key, int) and key in categories:
        return key
    ids = ids_by_name.get(str(key))
    if not ids:
        known = ", ".join(sorted(ids_by_name))
        raise Problem(
            f"classes.{key}: no category of that name in the dataset; its classes are: {known}"
        )
    if len(ids) > 1:
        raise Problem(
            f"classes.{key}: the dataset has {len(ids)} categories named {key!r} (ids {ids}); "
            f"address each by its id instead, e.g. '{ids[0]}:' under classes"
        )
    return ids[0]

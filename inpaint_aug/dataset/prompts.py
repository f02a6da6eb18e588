"""The prompt book: per-class prompt templates from a YAML file, checked against the dataset.

Format (see ``datasets/shapes/prompts.yaml`` for a commented example)::

    vars:                                   # global placeholder values
      light: [daylight, overcast]
    default:                                # classes not listed under `classes`
      prompt: "a photo of a {name}, {light}"
      negative: "blurry, low quality"
    classes:
      car:
        prompt: ["a {color} car, {light}", "a photo of a {color} car"]
        vars: {color: [red, blue]}
        strength: 0.9
        target: 400                         # redraw at least 400 cars (extra copies)
      person: {skip: true}
      7: {prompt: "a {name}"}                # a category id, for duplicated names
    background:                             # --mode background: the scene around the objects
      prompt: "a {surface}, {light}"
      vars: {surface: [wooden table, grass]}

``default`` may leave out ``prompt`` (e.g. only a shared ``negative``): listed classes then
inherit what it has and need their own prompt, and classes not listed are not redrawn.

Every problem of a file is found, class by class and key by key (the checks of single values
are in :mod:`.prompt_checks`), and raised together as one :class:`PromptProblems`; ``inpaint-aug
validate`` shows each on its own line.

Example:
    >>> book = parse_prompts({"default": {"prompt": "a {name}"}}, "p.yaml", {1: "cat"})
    >>> book.render(1, seed=0)
    ('a cat', '')
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inpaint_aug.dataset import prompt_checks as check
from inpaint_aug.dataset.prompt_checks import Found, Problem, or_empty, parse_vars
from inpaint_aug.errors import PromptError

TOP_KEYS = {"vars", "default", "classes", "background"}
BACKGROUND = ("background",)  # the background entry's key among the parsed specs (no category)
CLASS_KEYS = {"prompt", "negative", "vars", "strength", "guidance", "steps", "skip", "target"}
CLASS_KEYS |= {"control_scale"}


class PromptProblems(PromptError):
    """Every problem of one prompts file; the message lists them all on one line.

    Attributes:
        path: the prompts file.
        problems: each problem as ``"<key>: <what is wrong>"``, without the file name.

    Example:
        >>> str(PromptProblems("p.yaml", ["a: bad", "b: worse"]))
        'p.yaml: 2 problems: a: bad; b: worse; run `inpaint-aug validate` to list them'
    """

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = tuple(problems)
        if len(self.problems) == 1:
            super().__init__(f"{path}: {self.problems[0]}")
        else:
            listed = "; ".join(self.problems)
            super().__init__(
                f"{path}: {len(self.problems)} problems: {listed}; "
                "run `inpaint-aug validate` to list them"
            )


@dataclass(frozen=True)
class ClassPrompt:
    """How one class is redrawn. ``None`` settings fall back to the run's settings."""

    prompts: tuple[str, ...] = ()
    negatives: tuple[str, ...] = ("",)
    vars: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    strength: float | None = None
    guidance: float | None = None
    steps: int | None = None
    skip: bool = False
    control_scale: float | None = None
    target: int | None = None


@dataclass(frozen=True)
class PromptBook:
    """Validated prompts for every category of one dataset, keyed by category id.

    ``background`` is the ``background:`` entry (``--mode background``), or ``None``.
    """

    path: str
    by_category: Mapping[int, ClassPrompt]
    names: Mapping[int, str]
    background: ClassPrompt | None = None

    def spec(self, category_id: int) -> ClassPrompt | None:
        """The class's prompt spec, or ``None`` when the book does not cover the class."""
        return self.by_category.get(category_id)

    def render(self, category_id: int | None, seed: int) -> tuple[str, str]:
        """Fill a class's prompt and negative prompt (``None``: the background's), seeded."""
        spec = self.by_category[category_id] if category_id is not None else self.background
        assert spec is not None, "no background entry"
        rng = random.Random(seed)
        values = {"name": self.names.get(category_id, "")}
        values.update({k: rng.choice(v) for k, v in sorted(spec.vars.items())})
        prompt = rng.choice(spec.prompts).format_map(values)
        negative = rng.choice(spec.negatives).format_map(values)
        return prompt, negative


def load_prompts(path: Path | str, categories: Mapping[int, str]) -> PromptBook:
    """Read and validate a prompts YAML against the dataset's categories (id → name).

    Raises:
        PromptError: unreadable or invalid YAML (the file cannot be read further). A
            :class:`PromptProblems` for everything else (unknown keys or classes, wrong types,
            undefined placeholders), listing every problem. Messages name the file and the key.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PromptError(f"{path}: invalid YAML{where}: {getattr(err, 'problem', err)}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PromptError(f"{path}: cannot read the file ({err})") from None
    return parse_prompts(data, str(path), categories)


def parse_prompts(data: Any, path: str, categories: Mapping[int, str]) -> PromptBook:
    """Validate an already-parsed prompt book; see :func:`load_prompts`.

    Raises:
        PromptProblems: every problem found, in file order.
    """
    found = Found()
    specs = found.check(_parse_book, data, categories, found, default={})
    if found.problems:
        raise PromptProblems(path, found.problems)
    by_category = {cid: specs[cid] for cid in categories if cid in specs}
    background = specs.get(BACKGROUND)
    return PromptBook(path, by_category, names=dict(categories), background=background)


def _parse_book(data: Any, categories: Mapping[int, str], found: Found) -> dict[int, ClassPrompt]:
    """Each category's spec; problems go to ``found`` (raises only for a non-mapping file)."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise Problem(f"expected a mapping with keys {sorted(TOP_KEYS)}, got {got}")
    unknown = set(data) - TOP_KEYS
    if unknown:
        found.add(
            f"unknown top-level key(s) {sorted(map(str, unknown))}, expected {sorted(TOP_KEYS)}"
        )
    global_vars = parse_vars(or_empty(data, "vars"), "vars", found)
    default = data.get("default")
    base = _parse_class(default, "default", global_vars, found) if default is not None else None
    specs: dict[int, ClassPrompt] = {}
    for cid, (key, raw) in _resolve_classes(or_empty(data, "classes"), categories, found).items():
        spec = _parse_class(raw, f"classes.{key}", global_vars, found, base)
        if spec is not None:
            specs[cid] = spec
    if base is not None and (base.prompts or base.skip):
        specs.update({cid: base for cid in categories if cid not in specs})
    if data.get("background") is not None:
        found.check(check.background_entry, data["background"])
        specs[BACKGROUND] = _parse_class(data["background"], "background", global_vars, found)
    return specs


def _resolve_classes(
    classes: Any, categories: Mapping[int, str], found: Found
) -> dict[int, tuple[Any, Any]]:
    """Map each ``classes`` key (a category name or id) to the category id it addresses."""
    if not isinstance(classes, dict):
        found.add("'classes' must be a mapping of class name to settings")
        return {}
    ids_by_name: dict[str, list[int]] = {}
    for cid, name in categories.items():
        ids_by_name.setdefault(name, []).append(cid)
    resolved: dict[int, tuple[Any, Any]] = {}
    for key, spec in classes.items():
        cid = found.check(check.class_id, key, ids_by_name, categories)
        if cid is not None and cid in resolved:
            found.add(f"classes.{key}: category {cid} is already set by classes.{resolved[cid][0]}")
        elif cid is not None:
            resolved[cid] = (key, spec)
    return resolved


def _parse_class(
    raw: Any,
    where: str,
    global_vars: dict[str, tuple[str, ...]],
    found: Found,
    base: ClassPrompt | None = None,
) -> ClassPrompt | None:
    """Check one entry (``default`` or a class), key by key; a class inherits from ``default``.

    Returns ``None`` when the entry is not a mapping. A bad value is reported and the inherited
    one used in its place (a bad prompt stands in as ``""``), so nothing is reported twice.
    """
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        found.add(f"{where} must be a mapping with keys {sorted(CLASS_KEYS)}")
        return None
    unknown = set(raw) - CLASS_KEYS
    if unknown:
        found.add(
            f"{where}: unknown key(s) {sorted(map(str, unknown))}, "
            f"expected some of {sorted(CLASS_KEYS)}"
        )
    inherited = base or ClassPrompt()
    skip = found.check(check.skip_flag, raw, where, default=False)
    own = _templates(raw, where, found)
    if where != "default" and not ("prompt" in raw or skip or inherited.prompts):
        had = " (the default has no prompt)" if base is not None else ""
        found.add(f"{where} needs a 'prompt' (or 'skip: true'){had}")
    local = parse_vars(or_empty(raw, "vars"), f"{where}.vars", found)
    spec = ClassPrompt(
        prompts=own.get("prompt") or inherited.prompts,
        negatives=own.get("negative") or inherited.negatives,
        vars={**global_vars, **inherited.vars, **local},
        strength=found.check(check.number, raw, "strength", where, inherited.strength, 0.0, 1.0),
        guidance=found.check(check.number, raw, "guidance", where, inherited.guidance, 0.0, 100.0),
        steps=found.check(check.steps, raw, where, inherited.steps),
        skip=skip,
        control_scale=found.check(
            check.number, raw, "control_scale", where, inherited.control_scale, 0.0, 2.0
        ),
        target=found.check(check.target, raw, where, skip, inherited.target),
    )
    for template in own.get("prompt", ()) + own.get("negative", ()):
        found.check(check.check_placeholders, template, set(spec.vars), where)
    return spec


def _templates(raw: dict, where: str, found: Found) -> dict[str, tuple[str, ...]]:
    """The class's own ``prompt`` and ``negative`` templates (a bad one stands in as ``""``)."""
    return {
        key: found.check(check.strings, raw[key], f"{where}.{key}", default=("",))
        for key in ("prompt", "negative")
        if key in raw
    }

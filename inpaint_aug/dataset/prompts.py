"""The prompt book: per-class prompt templates from a YAML file.

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
      person: {skip: true}
      7: {prompt: "a {name}"}                # a category id, for duplicated names

Example:
    >>> book = parse_prompts({"default": {"prompt": "a {name}"}}, "p.yaml", {1: "cat"})
    >>> book.render(1, seed=0)
    ('a cat', '')
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inpaint_aug.errors import PromptError

TOP_KEYS = {"vars", "default", "classes"}
CLASS_KEYS = {"prompt", "negative", "vars", "strength", "guidance", "steps", "skip"}


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


@dataclass(frozen=True)
class PromptBook:
    """Validated prompts for every category of one dataset, keyed by category id."""

    path: str
    by_category: Mapping[int, ClassPrompt]
    names: Mapping[int, str]

    def spec(self, category_id: int) -> ClassPrompt | None:
        """The class's prompt spec, or ``None`` when the book does not cover the class."""
        return self.by_category.get(category_id)

    def render(self, category_id: int, seed: int) -> tuple[str, str]:
        """Fill one prompt and negative prompt for a class with a seeded random choice."""
        spec = self.by_category[category_id]
        rng = random.Random(seed)
        values = {"name": self.names[category_id]}
        values.update({k: rng.choice(v) for k, v in sorted(spec.vars.items())})
        prompt = rng.choice(spec.prompts).format_map(values)
        negative = rng.choice(spec.negatives).format_map(values)
        return prompt, negative


def load_prompts(path: Path | str, categories: Mapping[int, str]) -> PromptBook:
    """Read and validate a prompts YAML against the dataset's categories (id → name).

    Raises:
        PromptError: unreadable or invalid YAML, unknown keys or classes, wrong types,
            undefined placeholders. The message names the file and the key.
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
    """Validate an already-parsed prompt book; see :func:`load_prompts`."""
    if not isinstance(data, dict):
        raise PromptError(
            f"{path}: expected a mapping with keys {sorted(TOP_KEYS)}, got {type(data).__name__}"
        )
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise PromptError(
            f"{path}: unknown top-level key(s) {sorted(map(str, unknown))}, "
            f"expected {sorted(TOP_KEYS)}"
        )
    global_vars = _parse_vars(_or_empty(data, "vars"), path, "vars")
    default = data.get("default")
    base = _parse_class(default, path, "default", global_vars) if default is not None else None
    classes = _or_empty(data, "classes")
    if not isinstance(classes, dict):
        raise PromptError(f"{path}: 'classes' must be a mapping of class name to settings")
    explicit = _resolve_classes(classes, path, categories)
    by_category: dict[int, ClassPrompt] = {}
    for cid in categories:
        if cid in explicit:
            key, spec = explicit[cid]
            by_category[cid] = _parse_class(spec, path, f"classes.{key}", global_vars, base)
        elif base is not None:
            by_category[cid] = base
    return PromptBook(path=path, by_category=by_category, names=dict(categories))


def _resolve_classes(
    classes: dict[Any, Any], path: str, categories: Mapping[int, str]
) -> dict[int, tuple[Any, Any]]:
    """Map each ``classes`` key (a category name or id) to the category id it addresses."""
    ids_by_name: dict[str, list[int]] = {}
    for cid, name in categories.items():
        ids_by_name.setdefault(name, []).append(cid)
    resolved: dict[int, tuple[Any, Any]] = {}
    for key, spec in classes.items():
        if isinstance(key, bool):  # YAML 1.1 reads yes/no/on/off/true/false keys as booleans
            raise PromptError(
                f"{path}: classes.{key}: YAML reads this key as a boolean, not a class; "
                "quote the class name (e.g. 'yes':)"
            )
        if isinstance(key, int) and key in categories:
            resolved[key] = (key, spec)
            continue
        ids = ids_by_name.get(str(key))
        if not ids:
            known = ", ".join(sorted(ids_by_name))
            raise PromptError(
                f"{path}: classes.{key}: no category of that name in the "
                f"dataset; its classes are: {known}"
            )
        if len(ids) > 1:
            raise PromptError(
                f"{path}: classes.{key}: the dataset has {len(ids)} categories "
                f"named {key!r} (ids {ids}); address each by its id instead, "
                f"e.g. '{ids[0]}:' under classes"
            )
        resolved[ids[0]] = (key, spec)
    return resolved


def _or_empty(raw: dict[Any, Any], key: str) -> Any:
    """``raw[key]``, or ``{}`` when the key is absent or left empty (``None``)."""
    value = raw.get(key)
    return {} if value is None else value


def _parse_vars(raw: Any, path: str, where: str) -> dict[str, tuple[str, ...]]:
    """Placeholder values: a mapping of name to a non-empty list of strings (or one string)."""
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: {where} must be a mapping of name to a list of strings")
    out = {}
    for name, values in raw.items():
        out[str(name)] = _strings(values, path, f"{where}.{name}")
    return out


def _strings(raw: Any, path: str, where: str) -> tuple[str, ...]:
    """A string or a non-empty list of strings, as a tuple."""
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not values:
        raise PromptError(
            f"{path}: {where} must be a string or a non-empty list of strings, got {raw!r}"
        )
    for v in values:
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            raise PromptError(f"{path}: {where} holds {v!r}, expected a string")
    return tuple(str(v) for v in values)


def _parse_class(
    raw: Any,
    path: str,
    where: str,
    global_vars: dict[str, tuple[str, ...]],
    base: ClassPrompt | None = None,
) -> ClassPrompt:
    """Validate one class entry, inheriting what it leaves out from ``default``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: {where} must be a mapping with keys {sorted(CLASS_KEYS)}")
    unknown = set(raw) - CLASS_KEYS
    if unknown:
        raise PromptError(
            f"{path}: {where}: unknown key(s) {sorted(map(str, unknown))}, "
            f"expected some of {sorted(CLASS_KEYS)}"
        )
    skip = raw.get("skip", False)
    if not isinstance(skip, bool):
        raise PromptError(f"{path}: {where}.skip must be true or false, got {skip!r}")
    inherited = base or ClassPrompt()
    prompts = _strings(raw["prompt"], path, f"{where}.prompt") if "prompt" in raw else None
    if prompts is None and not skip and not inherited.prompts:
        raise PromptError(f"{path}: {where} needs a 'prompt' (or 'skip: true')")
    negatives = _strings(raw["negative"], path, f"{where}.negative") if "negative" in raw else None
    local_vars = _parse_vars(_or_empty(raw, "vars"), path, f"{where}.vars")
    spec = ClassPrompt(
        prompts=prompts or inherited.prompts,
        negatives=negatives or inherited.negatives,
        vars={**global_vars, **inherited.vars, **local_vars},
        strength=_number(raw, "strength", path, where, inherited.strength, 0.0, 1.0),
        guidance=_number(raw, "guidance", path, where, inherited.guidance, 0.0, 100.0),
        steps=_steps(raw, path, where, inherited.steps),
        skip=skip,
    )
    _check_placeholders(spec, path, where)
    return spec


def _number(
    raw: dict, key: str, path: str, where: str, default: float | None, low: float, high: float
) -> float | None:
    """An optional float setting within ``(low, high]`` (``[0, high]`` for guidance)."""
    if key not in raw:
        return default
    value = raw[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (low <= value <= high) or (key == "strength" and value <= 0):
        bounds = f"0 < {key} <= 1" if key == "strength" else f"{low} <= {key} <= {high}"
        raise PromptError(f"{path}: {where}.{key} is {value!r}, expected a number with {bounds}")
    return float(value)


def _steps(raw: dict, path: str, where: str, default: int | None) -> int | None:
    """An optional positive integer number of denoising steps."""
    if "steps" not in raw:
        return default
    value = raw["steps"]
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise PromptError(f"{path}: {where}.steps is {value!r}, expected an integer 1..1000")
    return value


def _check_placeholders(spec: ClassPrompt, path: str, where: str) -> None:
    """Every ``{placeholder}`` must be ``name`` or a defined var; braces must balance."""
    defined = set(spec.vars) | {"name"}
    for template in spec.prompts + spec.negatives:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as err:
            raise PromptError(f"{path}: {where}: bad template {template!r}: {err}") from None
        for name in fields:
            if name not in defined:
                raise PromptError(
                    f"{path}: {where}: placeholder {{{name}}} in {template!r} is not defined; "
                    f"defined: {sorted(defined)} (add it under 'vars')"
                )

"""Check a dataset and its prompts without loading a model, and say what a run would do.

Unlike a run, which stops at the first fatal problem, validation lists every problem it finds:
structural errors, every problem of the prompts file, per-item problems (images missing,
unreadable or of the wrong size, annotations that would be dropped) and what would be edited or
skipped, per class. It runs the run's own checks: the plan, then the image headers and the
occlusion order (:mod:`inpaint_aug.pipeline.predict`), so its counts are the run's, before
verification (which cannot be predicted without the model). Its verdict is the run's too: when
nothing would be redrawn, a run stops with the same message.

Example:
    >>> report = validate("datasets/shapes/annotations.json",
    ...                   "datasets/shapes/prompts.yaml")  # doctest: +SKIP
    >>> report.ok  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpaint_aug.choices import Mode
from inpaint_aug.dataset.coco import CocoDataset, load_coco, read_json, structure_problems
from inpaint_aug.dataset.prompts import PromptBook, load_prompts, parse_prompts
from inpaint_aug.dataset.schedules import check_schedules
from inpaint_aug.errors import DatasetError, ItemError, OptionsError, PromptError
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.background import REGION as BACKGROUND
from inpaint_aug.pipeline.balance import ClassBalance
from inpaint_aug.pipeline.plan import Skip, check_image, plan_dataset
from inpaint_aug.pipeline.predict import (
    Prediction,
    balance_plan,
    copies_of,
    image_problem,
    nothing_redrawn,
    predict,
)


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` is ``error`` (a run cannot work) or ``warning`` (items skipped)."""

    level: str
    where: str
    message: str


@dataclass
class ValidationReport:
    """Everything found, and what a run would edit per class.

    Attributes:
        findings: every problem, in the order found.
        would_edit: per class, the objects a run would redraw before verification, counted
            once per output copy (as the run's per-class table counts them).
        would_skip: per class, ``kind/reason`` -> count, in the same unit; the ``(image)`` row
            counts images.
        images_checked: image files whose header was read.
        copies: the copies per image the counts assume (``--copies``).
        balance: per class name, the plan of each class with a target (``--balance``,
            ``target:``): source instances, target, planned redraws, images used.
    """

    findings: list[Finding] = field(default_factory=list)
    would_edit: dict[str, int] = field(default_factory=dict)
    would_skip: dict[str, dict[str, int]] = field(default_factory=dict)
    images_checked: int = 0
    copies: int = 1
    balance: dict[str, ClassBalance] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """A run would work: no error, and at least one object would be redrawn."""
        errors = any(f.level == "error" for f in self.findings)
        return not errors and sum(self.would_edit.values()) > 0

    def add(self, level: str, where: Any, message: str) -> None:
        """Record a finding: ``level`` is ``"error"`` or ``"warning"``, ``where`` its place."""
        self.findings.append(Finding(level, str(where), message))


def validate(
    coco: Path | str,
    prompts: Path | str | None = None,
    images: Path | str | None = None,
    settings: PlanSettings | Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> ValidationReport:
    """Check everything a run would check, and the image files, without a model.

    Args:
        coco: the COCO JSON.
        prompts: the prompts YAML; without it every class is taken as redrawn.
        images: the image folder (found automatically when ``None``).
        settings: the plan settings, or their raw values (then a bad value is reported as an
            error finding, with the rest, instead of raised).
        limit: only the first ``limit`` images.
    """
    report = ValidationReport()
    plan = _settings(settings, report)
    report.copies = plan.copies
    path = Path(coco)
    ds = _dataset(path, images, report)
    book = _book(ds, prompts, report)
    if ds is None:
        return report
    files = _check_files(ds, ds.images[:limit], report)
    if book is None:
        return report
    try:
        check_schedules(book, plan)
    except PromptError as err:
        _prompt_findings(err, book.path, report)
        if plan.mode is Mode.background and book.background is None:
            return report  # nothing to plan without the background's prompt
    jobs, skips = plan_dataset(ds, book, plan, limit)
    predicted = predict(ds, jobs, files)
    _summarise(ds, skips, predicted, report)
    for row in balance_plan(ds, book, plan, jobs, limit):
        report.balance[book.names.get(row.category_id, str(row.category_id))] = row
    if not predicted.edits:
        images_planned = len(ds.images[:limit])
        report.add("error", path, nothing_redrawn([*skips, *predicted.skips], images_planned))
    return report


def _settings(settings: Any, report: ValidationReport) -> PlanSettings:
    """Build the plan settings from raw values; a bad value becomes an error finding."""
    if settings is None or isinstance(settings, PlanSettings):
        return settings or PlanSettings()
    try:
        return PlanSettings(**settings)
    except OptionsError as err:
        report.add("error", "options", str(err))
        good = {}
        for key, value in settings.items():
            try:
                PlanSettings(**{key: value})
                good[key] = value
            except (OptionsError, TypeError):
                continue
        try:
            return PlanSettings(**good)
        except OptionsError:  # each value passes alone, not together (steps x strength)
            return PlanSettings()


def _dataset(path: Path, images: Any, report: ValidationReport) -> CocoDataset | None:
    """Read and index the dataset, every structural problem a finding; ``None`` on an error."""
    try:
        errors, warnings = structure_problems(read_json(path))
    except DatasetError as err:
        report.add("error", path, str(err).removeprefix(f"{path}: "))
        return None
    for level, messages in (("error", errors), ("warning", warnings)):
        for message in messages:
            report.add(level, path, message)
    if errors:
        return None
    try:
        return load_coco(path, images)
    except DatasetError as err:
        report.add("error", path, str(err).removeprefix(f"{path}: "))
        return None


def _book(ds: CocoDataset | None, prompts: Any, report: ValidationReport) -> PromptBook | None:
    """The prompt book, or a stand-in that redraws every class when no prompts are given."""
    if ds is None:
        return None
    names = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    duplicated = [n for n, k in Counter(names.values()).items() if k > 1]
    for name in duplicated:
        ids = [cid for cid, n in names.items() if n == name]
        hint = "address them by id in the prompts file (e.g. '7:' under classes)"
        report.add("warning", ds.path, f"category name {name!r} is used by ids {ids}; {hint}")
    if prompts is None:
        return parse_prompts({"default": {"prompt": "a {name}"}}, "(no prompts)", names)
    try:
        return load_prompts(prompts, names)
    except PromptError as err:
        _prompt_findings(err, prompts, report)
        return None


def _prompt_findings(err: PromptError, path: Any, report: ValidationReport) -> None:
    """One error finding per problem of the prompts file."""
    problems = getattr(err, "problems", None) or [str(err).removeprefix(f"{path}: ")]
    for problem in problems:
        report.add("error", path, problem)


def _summarise(
    ds: CocoDataset, skips: list[Skip], predicted: Prediction, report: ValidationReport
) -> None:
    """Count edits and skips per class, per output copy; list dropped annotations."""

    def name(skip: Skip) -> str:
        if skip.category_id is None:
            return "(image)" if skip.kind == "image" else "(unknown)"
        return str(ds.categories_by_id.get(skip.category_id, {}).get("name", skip.category_id))

    for _, edit in predicted.edits:
        key = str(ds.categories_by_id.get(edit.category_id, {}).get("name", edit.category_id))
        key = "(background)" if edit.region == BACKGROUND else key
        report.would_edit[key] = report.would_edit.get(key, 0) + 1
    for skip in [*skips, *predicted.skips]:
        row = report.would_skip.setdefault(name(skip), {})
        reason = f"{skip.kind}/{skip.reason}"
        row[reason] = row.get(reason, 0) + copies_of(skip, report.copies)
    for skip in skips:
        if skip.kind == "class":
            report.add("warning", "balance", skip.detail)
        if skip.kind in ("annotation", "image") and skip.reason != "nothing-to-edit":
            aid = skip.annotation_id
            where = f"annotation {aid}" if aid is not None else f"image {skip.image_id}"
            report.add("warning", where, f"{skip.reason}: {skip.detail}")


def _check_files(
    ds: CocoDataset, images: list[dict], report: ValidationReport
) -> dict[Any, ItemError | None]:
    """Open each image's header (no full decode): present, readable, upright size as the JSON.

    Returns the problem of each image (``None`` when it has none), by image id.
    """
    problems: dict[Any, ItemError | None] = {}
    for image in images:
        if check_image(image):
            continue  # skipped for its JSON entry, reported with the plan
        report.images_checked += 1
        problems[image["id"]] = problem = image_problem(ds, image)
        if problem is not None:
            where = f"image {image.get('id')} ({image.get('file_name')})"
            report.add("warning", where, f"{problem.reason}: {problem.detail}")
    return problems

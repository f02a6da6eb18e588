"""Check a dataset and its prompts without loading a model, and say what a run would do.

Unlike a run, which stops at the first fatal problem, validation lists every problem it finds:
structural errors, per-item problems (images missing, unreadable or of the wrong size,
annotations that would be dropped) and what would be edited or skipped, per class.

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

from PIL import Image, UnidentifiedImageError

from inpaint_aug.dataset.coco import CocoDataset, load_coco, read_json, structure_problems
from inpaint_aug.dataset.prompts import PromptBook, load_prompts, parse_prompts
from inpaint_aug.errors import DatasetError, OptionsError, PromptError
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.plan import Skip, check_schedules, plan_dataset

ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` is ``error`` (a run cannot work) or ``warning`` (items skipped)."""

    level: str
    where: str
    message: str


@dataclass
class ValidationReport:
    """Everything found, and what a run would edit per class."""

    findings: list[Finding] = field(default_factory=list)
    would_edit: dict[str, int] = field(default_factory=dict)
    would_skip: dict[str, dict[str, int]] = field(default_factory=dict)
    images_checked: int = 0

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
    path = Path(coco)
    try:
        raw = read_json(path)
    except DatasetError as err:
        report.add("error", path, str(err).removeprefix(f"{path}: "))
        return report
    errors, warnings = structure_problems(raw)
    for message in errors:
        report.add("error", path, message)
    for message in warnings:
        report.add("warning", path, message)
    if errors:
        return report
    ds = _dataset(path, images, report)
    book = _book(ds, prompts, report)
    if ds is None or book is None:
        return report
    try:
        check_schedules(book, plan)
    except PromptError as err:
        report.add("error", book.path, str(err).removeprefix(f"{book.path}: "))
    jobs, skips = plan_dataset(ds, book, plan, limit)
    _summarise(ds, jobs, skips, report)
    _check_files(ds, ds.images[:limit], report)
    if not jobs:
        why = "see the reasons per class below; check the prompts file and --min-size"
        report.add("error", path, f"nothing would be redrawn: no object is eligible ({why})")
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
    """Index the dataset and find its image folder (an error finding when there is none)."""
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
        report.add("error", prompts, str(err).removeprefix(f"{prompts}: "))
        return None


def _summarise(ds: CocoDataset, jobs: list, skips: list[Skip], report: ValidationReport) -> None:
    """Count edits per class and skips per class and reason; list dropped annotations."""
    name = {c["id"]: str(c.get("name")) for c in ds.raw["categories"]}
    for job in jobs:
        for edit in job.edits:
            key = name.get(edit.category_id, str(edit.category_id))
            report.would_edit[key] = report.would_edit.get(key, 0) + 1
    for skip in skips:
        key = name.get(skip.category_id, "(image)" if skip.kind == "image" else "(unknown)")
        row = report.would_skip.setdefault(key, {})
        row[f"{skip.kind}/{skip.reason}"] = row.get(f"{skip.kind}/{skip.reason}", 0) + 1
        if skip.kind in ("annotation", "image") and skip.reason != "nothing-to-edit":
            aid = skip.annotation_id
            where = f"annotation {aid}" if aid is not None else f"image {skip.image_id}"
            report.add("warning", where, f"{skip.reason}: {skip.detail}")


def _check_files(ds: CocoDataset, images: list[dict], report: ValidationReport) -> None:
    """Open each image's header (no full decode): present, readable, upright size as the JSON."""
    for image in images:
        path = ds.image_path(image)
        report.images_checked += 1
        where = f"image {image.get('id')} ({image.get('file_name')})"
        if not path.is_file():
            report.add("warning", where, f"image-missing: {path}")
            continue
        try:
            with Image.open(path) as img:
                width, height = img.size
                if img.getexif().get(0x0112) in ROTATED:
                    width, height = height, width
        except (UnidentifiedImageError, OSError, ValueError) as err:
            report.add("warning", where, f"image-unreadable: {err}")
            continue
        if (width, height) != (image.get("width"), image.get("height")):
            says = f"{image.get('width')}x{image.get('height')}"
            message = f"size-mismatch: file is {width}x{height} upright, the JSON says {says}"
            report.add("warning", where, message)

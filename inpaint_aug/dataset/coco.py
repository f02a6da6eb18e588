"""COCO datasets kept as raw JSON, with lookup tables beside them.

The loaded dict is the data model: every key, unknown ones too, survives to the output. Only
structural problems that make the file unusable are fatal here; per-item problems (a bad
polygon, an unknown category) are found when edits are planned and skipped there.

Example:
    >>> ds = load_coco("datasets/shapes/annotations.json")  # doctest: +SKIP
    >>> len(ds.images), ds.category_names()[:2]  # doctest: +SKIP
    (6, ['circle', 'square'])
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inpaint_aug.errors import DatasetError

REQUIRED_KEYS = ("images", "annotations", "categories")
# What happens to an id <= 0 (some tools refuse one): the output renumbers images and
# annotations from 1 but keeps category ids as they are.
NON_POSITIVE = {
    "images": "the output renumbers images from 1 (its provenance keeps the source id)",
    "annotations": "the output renumbers annotations from 1",
    "categories": (
        "kept as it is in the output (some COCO tools reserve 0 for the background); "
        "a YOLO export numbers classes by category order"
    ),
}


@dataclass(frozen=True)
class CocoDataset:
    """A COCO dataset: the raw dict plus indexes over it.

    Attributes:
        path: the JSON file it was read from.
        raw: the parsed JSON, unchanged.
        image_root: the folder that ``file_name`` values resolve against.
        warnings: non-fatal findings (e.g. id 0), for the report.
    """

    path: Path
    raw: dict[str, Any]
    image_root: Path
    warnings: tuple[str, ...] = ()
    anns_by_image: dict[Any, list[dict[str, Any]]] = field(default_factory=dict, repr=False)
    categories_by_id: dict[Any, dict[str, Any]] = field(default_factory=dict, repr=False)
    images_by_id: dict[Any, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def images(self) -> list[dict[str, Any]]:
        """The ``images`` list, in file order."""
        return self.raw["images"]

    @property
    def annotations(self) -> list[dict[str, Any]]:
        """The ``annotations`` list, in file order."""
        return self.raw["annotations"]

    def category_names(self) -> list[str]:
        """Category names in file order."""
        return [str(c.get("name")) for c in self.raw["categories"]]

    def image_path(self, image: dict[str, Any]) -> Path:
        """Where the file of an ``images`` entry lives (absolute names are taken as they are)."""
        name = str(image.get("file_name", ""))
        return Path(name) if os.path.isabs(name) else self.image_root / name


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object from ``path`` or raise :class:`DatasetError` with line and column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read the file ({err})") from None
    if not text.strip():
        raise DatasetError(f"{path}: the file is empty, expected a COCO JSON object")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top, got {type(data).__name__}")
    return data


def load_coco(path: Path | str, images: Path | str | None = None) -> CocoDataset:
    """Load a COCO JSON file, check its structure and find its image folder.

    Args:
        path: the annotations JSON.
        images: the image folder; found automatically when ``None``.

    Raises:
        DatasetError: unreadable file, invalid JSON, missing keys, bad or duplicate ids, or no
            image folder found.
    """
    path = Path(path)
    raw = read_json(path)
    warnings = check_structure(path, raw)
    root = Path(images) if images is not None else find_image_root(path, raw["images"])
    if images is not None and not root.is_dir():
        raise DatasetError(f"{root}: --images is not a folder")
    anns_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in raw["annotations"]:
        if not isinstance(ann.get("image_id"), (list, dict)):  # unhashable: matches no image
            anns_by_image[ann.get("image_id")].append(ann)
    return CocoDataset(
        path=path,
        raw=raw,
        image_root=root,
        warnings=tuple(warnings),
        anns_by_image=dict(anns_by_image),
        categories_by_id={c["id"]: c for c in raw["categories"]},
        images_by_id={im["id"]: im for im in raw["images"]},
    )


def check_structure(path: Path, raw: dict[str, Any]) -> list[str]:
    """Raise on fatal structural problems; return warnings for odd but usable ones."""
    errors, warnings = structure_problems(raw)
    if errors:
        more = f" (and {len(errors) - 1} more: run `inpaint-aug validate`)" if errors[1:] else ""
        raise DatasetError(f"{path}: {errors[0]}{more}")
    return warnings


def structure_problems(raw: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Every structural error (fatal) and warning of a COCO dict, without stopping at the first."""
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        return [f"missing top-level key(s) {missing}; a COCO file needs {list(REQUIRED_KEYS)}"], []
    errors: list[str] = []
    warnings: list[str] = []
    for key in REQUIRED_KEYS:
        entries = raw[key]
        if not isinstance(entries, list):
            errors.append(f"'{key}' must be a list, got {type(entries).__name__}")
            continue
        key_errors, key_warnings = _check_ids(key, entries)
        errors += key_errors
        warnings += key_warnings
    return errors, warnings


def _check_ids(key: str, entries: list[Any]) -> tuple[list[str], list[str]]:
    """Ids must be integers and unique within their list; ids <= 0 are allowed with a warning."""
    seen: set[int] = set()
    errors, warnings = [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append(f"{key}[{i}] must be an object, got {type(entry).__name__}")
            continue
        value = entry.get("id")
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{key}[{i}] has id {value!r}, expected an integer")
        elif value in seen:
            errors.append(f"duplicate id {value} in '{key}' (at index {i})")
        else:
            seen.add(value)
            if value <= 0:
                warnings.append(f"{key} id {value} is not positive; {NON_POSITIVE[key]}")
    return errors, warnings


def candidate_roots(path: Path) -> list[Path]:
    """Folders where exporters put images, most likely first.

    Covers Roboflow (images beside the JSON), an ``images/`` folder beside it, and COCO's
    ``annotations/instances_X.json`` with images in ``../X/`` or ``../images/``.
    """
    here = path.parent
    roots = [here, here / "images", here.parent / "images", here.parent]
    match = re.match(r"(?:instances|person_keypoints|captions)_(\w+)\.json$", path.name)
    if match:
        roots[1:1] = [here.parent / match.group(1), here.parent / "images" / match.group(1)]
    return roots


def find_image_root(path: Path, images: list[dict[str, Any]], sample: int = 20) -> Path:
    """Pick the candidate folder in which most of the first ``sample`` images exist."""
    names = [str(im.get("file_name", "")) for im in images[:sample]]
    names = [n for n in names if n and not os.path.isabs(n)]
    if not names:
        return path.parent
    scored = [
        (sum((root / n).is_file() for n in names), -i, root)
        for i, root in enumerate(candidate_roots(path))
    ]
    hits, _, best = max(scored)
    if hits == 0:
        looked = ", ".join(str(r) for r in candidate_roots(path))
        raise DatasetError(
            f"{path}: no image folder found for file_name {names[0]!r} (looked in {looked}); "
            "pass --images DIR"
        )
    return best

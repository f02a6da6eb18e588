"""The files around a YOLO dataset's labels: class indices, ``data.yaml`` and the manifests.

One output folder holds every split of one dataset, so a split may only be added to a folder
whose ``class_map.json`` and task match; :func:`check_out_dir` refuses anything else before a
file is written. Every file is written atomically through :mod:`inpaint_aug.files`.

``data.yaml`` follows the Ultralytics docs (https://docs.ultralytics.com/datasets/detect/,
``coco8.yaml``): ``path: ... # dataset root dir``,
``train: images/train # train images (relative to 'path')``, ``names: {0: person, ...}``.

Example:
    >>> build_class_map([{"id": 7, "name": "b"}, {"id": 0, "name": "a"}])[1]
    {'yolo_index': 1, 'coco_category_id': 0, 'name': 'a'}
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from inpaint_aug import files
from inpaint_aug.choices import Split
from inpaint_aug.errors import OutputError

SPLITS: tuple[str, ...] = tuple(s.value for s in Split)
log = logging.getLogger(__name__)


def build_class_map(categories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Contiguous YOLO indices ``0..K-1`` for COCO categories, in file order, none dropped.

    Raises:
        ValueError: a category without an id, or two categories with the same id.
    """
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or "id" not in cat:
            raise ValueError(f"categories[{i}] has no 'id'")
        cid = cat["id"]
        if cid in seen:
            raise ValueError(f"duplicate category id {cid!r} (categories[{i}])")
        seen.add(cid)
        name = cat.get("name")
        out.append(
            {
                "yolo_index": i,
                "coco_category_id": cid,
                "name": str(name) if name is not None else f"class_{cid}",
            }
        )
    return out


def data_yaml_text(
    out: Path, class_map: list[dict[str, Any]], splits: Sequence[str], task: str
) -> str:
    """The ``data.yaml`` text: comments with the class mapping, then the YAML itself.

    Ultralytics requires both ``train`` and ``val``; one that was not exported points at an
    exported split (said in a comment) so the file loads as it is.
    """
    body: dict[str, Any] = {"path": str(out.resolve())}
    fallback = next(s for s in SPLITS if s in splits)
    notes = []
    for key in SPLITS:
        if key in splits:
            body[key] = f"images/{key}"
        elif key in ("train", "val"):
            body[key] = f"images/{fallback}"
            notes.append(
                f"# No '{key}' split exported yet: '{key}' points at '{fallback}', the same "
                f"images. Export one into this folder (run ... --split {key} --yolo-dir DIR)."
            )
    body["names"] = {e["yolo_index"]: e["name"] for e in class_map}
    header = [
        f"# Ultralytics YOLO {task} dataset written by inpaint-aug.",
        "# 'path' is absolute; delete that line to use the folder holding this file instead.",
        *notes,
        "# YOLO class index -> COCO category id (also in class_map.json):",
        *(f"#   {e['yolo_index']} -> {e['coco_category_id']!r} ({e['name']})" for e in class_map),
    ]
    dumped = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return "\n".join(header) + "\n" + dumped


def write_layout(
    out: Path, split: str, task: str, class_map: list[dict[str, Any]], manifest: dict[str, Any]
) -> Path:
    """Write ``manifest_<split>.json``, ``class_map.json`` and ``data.yaml``; return the last.

    The manifest goes first: ``data.yaml`` lists the splits that have one.

    Raises:
        OutputError: a file cannot be written.
    """
    files.write_json(files.inside(out, f"manifest_{split}.json"), manifest)
    files.write_json(files.inside(out, "class_map.json"), class_map)
    data_yaml = files.inside(out, "data.yaml")
    files.write_text(data_yaml, data_yaml_text(out, class_map, exported_splits(out), task))
    return data_yaml


def exported_splits(out: Path) -> list[str]:
    """The splits already exported to ``out`` (those with a manifest), in ``SPLITS`` order."""
    return [s for s in SPLITS if (out / f"manifest_{s}.json").is_file()]


def check_out_dir(out: Path, split: str, task: str, class_map: list[dict[str, Any]]) -> None:
    """Refuse to mix into ``out`` a split that exists, other classes, or another task.

    Raises:
        OutputError: ``out`` is a file or cannot be made or written in, the split already
            holds files, or ``out`` holds splits exported with other classes or another task.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    for sub in (out / "images" / split, out / "labels" / split):
        _check_can_make(sub)
        if sub.is_dir() and any(sub.iterdir()):
            raise OutputError(
                f"{sub}: already holds files (split '{split}' was exported before); "
                "use a new output folder or another split"
            )
    existing = out / "class_map.json"
    if existing.is_file() and _read_json(existing) != class_map:
        raise OutputError(
            f"{existing}: this folder holds splits exported with other classes; "
            "export every split of one dataset with the same categories list"
        )
    for other in exported_splits(out):
        path = out / f"manifest_{other}.json"
        manifest = _read_json(path)
        if not isinstance(manifest, dict):
            raise OutputError(f"{path}: cannot read it (not a JSON object)")
        other_task = manifest.get("task")
        if other_task != task and other != split:
            raise OutputError(
                f"{out}: split '{other}' was exported for task '{other_task}', not '{task}'"
            )


def _check_can_make(folder: Path) -> None:
    """Refuse a folder that cannot be made or written in, before any slow work.

    Its nearest existing ancestor (or itself) is a file, or a folder this process may not
    write in (permissions, an immutable folder, a read-only mount).
    """
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{folder}: cannot be made, {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: cannot be written, {parent} is not writable")


def _read_json(path: Path) -> Any:
    """A JSON file this exporter wrote before, or an OutputError saying why it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise OutputError(f"{path}: cannot read it ({err})") from None


def check_target(out: Path, split: str, task: str, categories: list[dict[str, Any]]) -> None:
    """Check, before any slow work, that this split can be exported into ``out`` later.

    Raises:
        OutputError: as :func:`check_out_dir` (the split exists, other classes, another task).
        ValueError: a category without an id, or two with the same id.
    """
    check_out_dir(Path(out), split, task, build_class_map(categories))


def warn_single_split(data_yaml: Path) -> None:
    """Log a warning for each of train and val that ``data.yaml`` points at another split."""
    splits = exported_splits(data_yaml.parent)
    for key in ("train", "val"):
        if key not in splits:
            log.warning(
                "%s: no '%s' split exported yet, so '%s' points at the '%s' images (training "
                "and validation on the same images); export a %s split into the same folder: "
                "inpaint-aug run ... --split %s --yolo-dir %s",
                data_yaml,
                key,
                key,
                splits[0],
                key,
                key,
                data_yaml.parent,
            )


def place_image(src: Path, dst: Path, link: bool) -> bool:
    """Put the image ``src`` at ``dst``: a hard link when ``link`` and possible, else a copy.

    The link is made under a temporary name and renamed over ``dst``, as every write is.
    Without ``link``, or where linking fails (another file system, a file system without hard
    links, a permission), the bytes are copied atomically. Nothing else is removed.

    Returns:
        Whether ``dst`` is a link.

    Raises:
        OutputError: the copy cannot be written.
    """
    if link:
        tmp = dst.with_name(f".{dst.name}.link")
        try:
            os.link(src, tmp)
        except OSError:
            pass  # not linkable here: copy
        else:
            try:
                os.replace(tmp, dst)
                return True
            except OSError:
                tmp.unlink(missing_ok=True)  # the link made just above
    files.copy_file(src, dst)
    return False

"""Check a finished run against its source: did every recorded edit change its object, and did
every rejected object keep its source pixels?

For each output image, each provenance ``edits`` entry must change the pixels inside its own
object's mask (box for box-only objects) by more than ``--min-change`` gray levels on average;
each ``rejected`` entry must leave them equal to the source, except where an edited object
stands in front of it (nested in it: those pixels are the other object's). Run the tool with
``--image-format png``: JPEG output is re-encoded, so no pixel stays exactly equal. Prints the
share of edits that changed and the per-class verification table (edited, after retry,
rejected).

Usage:
    python benchmarks/edit_check.py OUT SOURCE_COCO_JSON [--images DIR] [--min-change 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from inpaint_aug import geometry as geo
from inpaint_aug.dataset.coco import load_coco
from inpaint_aug.dataset.images import load_image


def object_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """An annotation's pixels in a full image: its mask, or its box without one."""
    window = geo.Window(0, 0, max(width, height))
    seg = ann.get("segmentation")
    if geo.segmentation_kind(seg) == "none":
        return geo.box_mask(geo.xywh_to_xyxy(ann["bbox"]), window)[:height, :width]
    return geo.window_mask(seg, height, width, window)[:height, :width]


def check(out: Path, coco: Path, images: Path | None, min_change: float) -> dict:
    """Counts of changed/unchanged edits and exact/inexact rejected objects, per class too."""
    ds = load_coco(coco, images)
    data = json.loads((out / "annotations.json").read_text(encoding="utf-8"))
    anns = {a["id"]: a for a in data["annotations"]}
    names = {c["id"]: str(c.get("name")) for c in data["categories"]}
    counts, table = Counter(), {}
    for image in data["images"]:
        prov = image.get("inpaint_aug") or {}
        if prov.get("original"):
            continue
        source = ds.images_by_id[prov["source_image_id"]]
        before = load_image(ds.image_path(source)).astype(np.int16)
        after = load_image(out / image["file_name"]).astype(np.int16)
        size = (image["height"], image["width"])
        edited = np.zeros(size, bool)
        for entry in prov.get("edits", []):
            edited |= object_mask(anns[entry["annotation_id"]], *size)
        for kind in ("edits", "rejected"):
            for entry in prov.get(kind, []):
                ann = anns[entry["annotation_id"]]
                inside = object_mask(ann, *size)
                if kind == "rejected":
                    inside &= ~edited
                change = float(np.abs(after[inside] - before[inside]).mean()) if inside.any() else 0
                row = table.setdefault(names.get(ann["category_id"], "?"), Counter())
                if kind == "edits":
                    counts["changed" if change > min_change else "unchanged"] += 1
                    row["edited"] += 1
                    row["after_retry"] += (entry.get("verify") or {}).get("attempts", 1) > 1
                else:
                    counts["rejected_exact" if change == 0 else "rejected_changed"] += 1
                    row["rejected"] += 1
    return {"counts": dict(counts), "per_class": {k: dict(v) for k, v in sorted(table.items())}}


def main() -> int:
    """Command line entry point; exit 1 when a check fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("coco", type=Path)
    parser.add_argument("--images", type=Path, default=None)
    parser.add_argument("--min-change", type=float, default=2.0)
    args = parser.parse_args()
    result = check(args.out, args.coco, args.images, args.min_change)
    print(json.dumps(result, indent=1))
    c = result["counts"]
    edited = c.get("changed", 0) + c.get("unchanged", 0)
    share = c.get("changed", 0) / edited if edited else 1.0
    print(
        f"edits that changed their object: {share:.1%} of {edited}; rejected objects "
        f"equal to the source: {c.get('rejected_exact', 0)} of "
        f"{c.get('rejected_exact', 0) + c.get('rejected_changed', 0)}"
    )
    return 0 if share >= 0.99 and not c.get("rejected_changed") else 1


if __name__ == "__main__":
    sys.exit(main())

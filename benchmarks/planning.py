"""How long planning takes on a large synthetic COCO file (no image is read, no model).

Makes N source images of the shapes sample (polygons), repeats them to --images entries, and
times ``plan_dataset`` (best of --repeats): planning now finds occluded objects from the
labels (pipeline/regions.py), which costs mask work per object.

    python benchmarks/planning.py --images 2000 --copies 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from inpaint_aug.dataset.coco import load_coco
from inpaint_aug.dataset.prompts import parse_prompts
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.plan import plan_dataset


def big_dataset(folder: Path, images: int, distinct: int) -> Path:
    """``images`` entries over ``distinct`` drawn images of 8-14 shapes each (640 x 480)."""
    src = make_shapes_dataset(
        folder,
        n_images=distinct,
        size=(640, 480),
        seed=5,
        image_format="jpg",
        objects_per_image=(8, 14),
    )
    data = json.loads(src.read_text(encoding="utf-8"))
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out_images, out_anns = [], []
    for k in range(images):
        image = data["images"][k % distinct]
        new_id = k + 1
        out_images.append({**image, "id": new_id})
        for ann in by_image.get(image["id"], []):
            out_anns.append({**ann, "id": len(out_anns) + 1, "image_id": new_id})
    data["images"], data["annotations"] = out_images, out_anns
    path = folder / "big.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--distinct", type=int, default=200)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = big_dataset(Path(tmp), args.images, args.distinct)
        ds = load_coco(path, images=Path(tmp) / "images")
        names = {c["id"]: c["name"] for c in ds.raw["categories"]}
        book = parse_prompts({"default": {"prompt": "a {name}"}}, "p.yaml", names)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            jobs, skips = plan_dataset(ds, book, PlanSettings(copies=args.copies))
            times.append(time.perf_counter() - started)
    anns = len(ds.raw["annotations"])
    edits = sum(len(j.edits) for j in jobs)
    occluded = sum(s.reason == "occluded" for s in skips)
    best = min(times)
    print(
        f"{len(ds.images)} images, {anns} annotations, copies {args.copies}: {edits} edits "
        f"planned, {occluded} occluded; plan_dataset best of {args.repeats} {best:.2f} s "
        f"({1e3 * best / anns:.2f} ms per annotation)"
    )


if __name__ == "__main__":
    main()

"""Peak host memory must not grow with the dataset: run N and 10 x N images, compare peak RSS.

Each size runs in its own process (peak RSS is per process). The model is replaced by a fast
stand-in that returns an inverted crop, so the figure measures the tool's own pipeline (decode,
crops, buckets, paste, encode, journal), which is what could grow with the dataset; the model's
memory is constant. Prints one line per size and the ratio.

Usage:
    python benchmarks/memory.py --images 20 --factor 10 --size 640x480
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


class InvertInpainter:
    """A stand-in model: returns each crop inverted (cheap, deterministic, never black)."""

    name = "invert"

    def inpaint(self, batch):
        return [(255 - r.pixels) | 16 for r in batch]


def child(images: int, size: tuple[int, int], batch: int) -> dict:
    """Run one job in this process and return its peak RSS in MB."""
    from inpaint_aug import PlanSettings, RunOptions, run
    from inpaint_aug.demo.synthetic import make_shapes_dataset

    with tempfile.TemporaryDirectory() as tmp:
        coco = make_shapes_dataset(Path(tmp, "data"), n_images=images, size=size, variety=False)
        prompts = Path(tmp, "p.yaml")
        prompts.write_text("default: {prompt: 'a {name}'}\n", encoding="utf-8")
        options = RunOptions(
            coco=coco,
            prompts=prompts,
            out=Path(tmp, "out"),
            batch_size=batch,
            plan=PlanSettings(resolution=256, min_size=8),
        )
        report = run(options, inpainter=InvertInpainter())
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"images": images, "objects": report.objects_edited, "peak_rss_mb": peak_kb / 1024}


def measure(images: int, size: str, batch: int) -> dict:
    """Run :func:`child` in a fresh interpreter and parse its JSON line."""
    cmd = [sys.executable, __file__, "--child", str(images), "--size", size, "--batch", str(batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if args.child:
        print(json.dumps(child(args.child, (width, height), args.batch)))
        return
    small = measure(args.images, args.size, args.batch)
    large = measure(args.images * args.factor, args.size, args.batch)
    for row in (small, large):
        print(
            f"{row['images']:6d} images  {row['objects']:6d} objects  "
            f"peak RSS {row['peak_rss_mb']:8.1f} MB"
        )
    growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1.0
    print(f"growth for {args.factor}x the images: {100 * growth:+.1f}% (target: at most +20%)")
    print(json.dumps({"small": small, "large": large, "growth": growth}))


if __name__ == "__main__":
    main()

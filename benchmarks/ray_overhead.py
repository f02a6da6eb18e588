"""The Ray executor's overhead against the local engine on the same CPU work; 1 vs 2 actors.

Builds a synthetic dataset and saves the tiny random model to a folder (the path a worker
loads), starts one local Ray, then runs the same job (``--model DIR``, verification off)
alternately with the local engine and with the Ray executor at 1 and 2 actors, each run into a
fresh OUT. Every run's wall time includes its model loading (in the actors, for Ray) and, for
Ray, the actor pool's start and the shared-folder check; ``ray.init`` is timed once, apart.
Outputs are checked identical (PNG bytes) across executors.

Example:
    HF_HUB_OFFLINE=1 python benchmarks/ray_overhead.py --images 24 --repeats 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# The same torch intra-op threads everywhere (here and, passed on, in every actor): CPU results
# depend on the thread count, and this keeps 1 vs 2 actors a clean 1 vs 2 cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import inpaint_aug
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.run import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--size", default="256x192")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2, help="alternating rounds of every setup")
    p.add_argument("--json", type=Path, help="also write the figures here")
    return p.parse_args(argv)


def build(root: Path, args: argparse.Namespace) -> tuple[Path, Path, Path]:
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    width, height = (int(v) for v in args.size.split("x"))
    coco = make_shapes_dataset(root / "data", n_images=args.images, size=(width, height), seed=1)
    prompts = root / "prompts.yaml"
    prompts.write_text("default:\n  prompt: 'a photo of a {name}'\n", encoding="utf-8")
    model = root / "tiny-model"
    DiffusersInpainter.load("tiny-random", "cpu").pipe.save_pretrained(str(model))
    return coco, prompts, model


def one_run(args, coco, prompts, model, out: Path, executor: str, actors: int | None) -> dict:
    plan = PlanSettings(resolution=args.resolution, steps=args.steps, seed=1)
    extra: dict[str, Any] = {"executor": executor}
    if executor == "ray":
        extra["ray_actors"] = actors
    options = RunOptions(
        coco,
        prompts,
        out=out,
        model=str(model),
        device="cpu",
        batch_size=args.batch_size,
        plan=plan,
        verify="off",
        **extra,
    )
    seen: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    report = run(options, progress=lambda done, _total: seen.append((time.perf_counter(), done)))
    wall = time.perf_counter() - t0
    (t_first, n_first), (t_last, n_last) = seen[0], seen[-1]
    steady = (n_last - n_first) / (t_last - t_first) if t_last > t_first else float("nan")
    digest = hashlib.sha256()
    for path in sorted((out / "images").iterdir()):
        digest.update(path.read_bytes())
    return {
        "wall_s": wall,
        "objects": report.objects_edited,
        "objects_per_s": report.objects_edited / wall,
        "steady_objects_per_s": steady,
        "first_result_s": t_first - t0,
        "model_s": report.seconds_model,
        "load_s": report.seconds_load,
        "digest": digest.hexdigest()[:16],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import ray
    import torch

    setups = [("local", "local", None), ("ray-1", "ray", 1), ("ray-2", "ray", 2)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        coco, prompts, model = build(root, args)
        t0 = time.perf_counter()
        env = {
            k: v for k, v in os.environ.items() if k.startswith(("HF_", "TRANSFORMERS_", "OMP_"))
        }
        ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
        ray_init_s = time.perf_counter() - t0
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in setups}
        for rnd in range(args.repeats):
            for name, executor, actors in setups:
                out = root / f"{name}-{rnd}"
                runs[name].append(one_run(args, coco, prompts, model, out, executor, actors))
                print(name, rnd, json.dumps(runs[name][-1]), flush=True)
        ray.shutdown()
    figures = summarize(args, runs, ray_init_s, torch.__version__, ray.__version__)
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def summarize(args, runs, ray_init_s, torch_version, ray_version) -> dict[str, Any]:
    keys = ("wall_s", "objects_per_s", "steady_objects_per_s", "first_result_s", "model_s")
    med = {n: {k: statistics.median(r[k] for r in rs) for k in keys} for n, rs in runs.items()}
    local = med["local"]["wall_s"]
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch_version,
            "ray": ray_version,
            "inpaint_aug": inpaint_aug.__version__,
            "loadavg": os.getloadavg(),
        },
        "settings": vars(args) | {"json": str(args.json)},
        "ray_init_s": ray_init_s,
        "median": med,
        "ray1_overhead": med["ray-1"]["wall_s"] / local - 1,
        "ray2_speedup_over_ray1": med["ray-2"]["objects_per_s"] / med["ray-1"]["objects_per_s"],
        "ray2_steady_speedup": med["ray-2"]["steady_objects_per_s"]
        / med["ray-1"]["steady_objects_per_s"],
        "identical_output": len({r["digest"] for rs in runs.values() for r in rs}) == 1,
        "objects": runs["local"][0]["objects"],
        "runs": runs,
    }


def print_table(f: dict[str, Any]) -> None:
    print(f"objects per run: {f['objects']}; ray.init {f['ray_init_s']:.1f}s (once)")
    print("| setup | wall s | first result s | objects/s (wall) | objects/s (steady) | model s |")
    print("|---|---|---|---|---|---|")
    for name, m in f["median"].items():
        print(
            f"| {name} | {m['wall_s']:.1f} | {m['first_result_s']:.1f} | "
            f"{m['objects_per_s']:.2f} | {m['steady_objects_per_s']:.2f} | {m['model_s']:.1f} |"
        )
    print(
        f"ray (1 actor) wall vs local: {f['ray1_overhead']:+.1%}; 2 actors vs 1: "
        f"{f['ray2_speedup_over_ray1']:.2f}x objects/s (steady {f['ray2_steady_speedup']:.2f}x); "
        f"identical output: {f['identical_output']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())

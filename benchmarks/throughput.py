"""Throughput of inpaint-aug against the naive per-object diffusers loop, in one run.

Builds a synthetic COCO dataset in a temporary folder, then times, with the same prebuilt
pipeline (load time excluded on both sides):

* **tool**: ``inpaint_aug.run`` (batched crops, paste-back, COCO output);
* **baseline**: what public notebooks do: one pipeline call per object, batch 1, on the whole
  image with ``padding_mask_crop`` (diffusers crops, inpaints and pastes back itself), objects
  of one image applied in turn, each finished image saved as PNG.

Both sides draw the same objects (not crowd, box at least ``--min-size``), with the same prompt,
resolution, steps, guidance, strength, dilation and context size, after one warm-up call each.

Example:
    HF_HUB_OFFLINE=1 python benchmarks/throughput.py --arch tiny --device cpu
    HF_HUB_OFFLINE=1 python benchmarks/throughput.py --arch sd15 --device cuda --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

import inpaint_aug
from inpaint_aug import geometry as geo
from inpaint_aug.demo.synthetic import make_shapes_dataset
from inpaint_aug.options import PlanSettings
from inpaint_aug.pipeline.backend import (
    DiffusersInpainter,
    InpaintRequest,
    compile_denoiser,
    pick_device,
)
from inpaint_aug.pipeline.control import edge_map
from inpaint_aug.pipeline.loading import quiet_libraries
from inpaint_aug.pipeline.plan import derive_seed

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flops
from sd15 import build_sd15_pipeline, sd15_controlnet

PROMPT, NEGATIVE = "a photo of a {name}", "blurry, low quality"
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
#: Defaults per architecture; sd15 is meant for a GPU.
DEFAULTS: dict[str, dict[str, Any]] = {
    "tiny": {"images": 8, "size": "256x192", "resolution": 64, "steps": 4, "batch_size": 8},
    "sd15": {"images": 64, "size": "768x512", "resolution": 512, "steps": 25, "batch_size": 16},
    "standin": {"images": 64, "size": "768x512", "resolution": 512, "steps": 25, "batch_size": 16},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; unset ones take the ``--arch`` defaults (see ``DEFAULTS``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--arch",
        choices=("tiny", "sd15", "standin"),
        default="tiny",
        help="standin: no model (returns the crop inverted at once): the CPU side's ceiling",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--dtype", choices=tuple(DTYPES), help="default: fp32 (bf16 for sd15 on cuda)")
    p.add_argument("--images", type=int, help="number of synthetic images")
    p.add_argument("--size", help="image size WxH")
    p.add_argument("--objects", default="2,3", help="objects per image: lo,hi")
    p.add_argument("--resolution", type=int, help="model resolution (square)")
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float, default=7.5)
    p.add_argument("--strength", type=float, default=1.0)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--min-size", type=int, default=16, help="smallest object side redrawn (px)")
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="alternate tool and naive loop N times (A B A B) on one model; the median round",
    )
    p.add_argument(
        "--baseline-images",
        type=int,
        help="time the naive loop on the first N images only (it is slow on a big run)",
    )
    p.add_argument(
        "--verify",
        choices=("none", "tiny-clip", "tiny-owlv2", "clip", "owlv2"),
        default="none",
        help="also verify each redraw (its time is reported apart); clip/owlv2 need the weights",
    )
    p.add_argument(
        "--control",
        choices=("none", "canny"),
        default="none",
        help="canny: redraw through a ControlNet (random weights, the arch's size); no baseline",
    )
    p.add_argument(
        "--mode",
        choices=("object", "background"),
        default="object",
        help="background: redraw each image's background (one edit per image); no baseline",
    )
    p.add_argument(
        "--compile",
        choices=("none", "full", "regional"),
        default="none",
        help="torch.compile the UNet: whole, or only its repeated blocks (as --compile does)",
    )
    p.add_argument("--peak-tflops", type=float, help="device peak (default: the table in flops.py)")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the tool run")
    p.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = p.parse_args(argv)
    for key, value in DEFAULTS[args.arch].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def plan_settings(args: argparse.Namespace) -> PlanSettings:
    """The tool's settings; the baseline reads dilation and context size from them too."""
    return PlanSettings(
        resolution=args.resolution,
        steps=args.steps,
        guidance=args.guidance,
        strength=args.strength,
        min_size=args.min_size,
        control=args.control,
        mode=args.mode,
    )


def build_dataset(root: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """Write the synthetic dataset and a prompts file (one default prompt); return both paths."""
    width, height = (int(v) for v in args.size.lower().split("x"))
    lo, hi = (int(v) for v in args.objects.split(","))
    coco = make_shapes_dataset(
        root / "data",
        n_images=args.images,
        size=(width, height),
        variety=False,
        objects_per_image=(lo, hi),
    )
    prompts = root / "prompts.yaml"
    prompts.write_text(
        f"default:\n  prompt: '{PROMPT}'\n  negative: '{NEGATIVE}'\n"
        f"background:\n  prompt: 'a wooden table, daylight'\n  negative: '{NEGATIVE}'\n"
    )
    return coco, prompts


def build_inpainter(args: argparse.Namespace, device: str, dtype: Any) -> Any:
    """The prebuilt model both sides share; prints the UNet size for sd15."""
    if args.arch == "standin":
        return StandIn()
    if args.arch == "tiny":
        inpainter = DiffusersInpainter.load("tiny-random", device)
        inpainter.pipe.to(dtype=dtype)
    else:
        quiet_libraries()
        pipe = build_sd15_pipeline(device).to(device=device, dtype=dtype)
        params = sum(p.numel() for p in pipe.unet.parameters())
        print(f"sd15 UNet parameters: {params / 1e6:.1f}M (SD 1.5 inpainting: ~860M)")
        if device.startswith("cuda"):  # as the tool's loader does on CUDA
            import torch

            pipe.unet.to(memory_format=torch.channels_last)
            pipe.vae.to(memory_format=torch.channels_last)
        inpainter = DiffusersInpainter(pipe, "sd15-random", device)
    if args.control == "canny":
        inpainter = with_random_controlnet(inpainter, args, device, dtype)
    if args.compile != "none":
        compile_denoiser(inpainter.pipe, regional=args.compile == "regional")
    return inpainter


def with_random_controlnet(
    inpainter: DiffusersInpainter, args: argparse.Namespace, device: str, dtype: Any
) -> DiffusersInpainter:
    """The same model driven through a random-weight ControlNet of the arch's size."""
    from diffusers import StableDiffusionControlNetInpaintPipeline

    from inpaint_aug.pipeline.tiny_families import build_tiny_controlnet

    net = build_tiny_controlnet() if args.arch == "tiny" else sd15_controlnet(device)
    pipe = StableDiffusionControlNetInpaintPipeline(
        **inpainter.pipe.components, controlnet=net.to(device=device, dtype=dtype)
    )
    params = sum(p.numel() for p in net.parameters())
    print(f"ControlNet parameters: {params / 1e6:.1f}M")
    return DiffusersInpainter(pipe, inpainter.name, device)


class StandIn:
    """No model: each result is its crop inverted, at once (times the tool's CPU side alone)."""

    name = "stand-in"
    device = "cpu"
    pipe = None

    def inpaint(self, batch: list[InpaintRequest]) -> list[np.ndarray]:
        return [255 - r.pixels for r in batch]


def eligible(ds: dict[str, Any], plan: PlanSettings) -> dict[int, list[dict[str, Any]]]:
    """Annotations the baseline redraws, per image id: the tool's rules (no crowd, min size)."""
    out: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in ds["images"]}
    for ann in ds["annotations"]:
        if not ann.get("iscrowd") and min(ann["bbox"][2:]) >= plan.min_size:
            out[ann["image_id"]].append(ann)
    return out


def object_mask(ann: dict[str, Any], size: tuple[int, int], dilate: int) -> Image.Image:
    """The object's polygon mask on the whole image, dilated, as a PIL ``L`` image."""
    width, height = size
    rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], height, width))
    mask = geo.dilate(mask_utils.decode(rle).astype(bool), dilate)
    return Image.fromarray(mask.astype(np.uint8) * 255)


def context_pad(ann: dict[str, Any], plan: PlanSettings) -> int:
    """``padding_mask_crop`` pixels giving the same context square as the tool's window."""
    longest = max(ann["bbox"][2:]) + 2 * plan.dilate
    side = max(math.ceil(longest * (1.0 + 2.0 * plan.padding)), plan.min_context)
    return math.ceil((side - longest) / 2)


def baseline_call(pipe: Any, image: Image.Image, mask: Image.Image, edit: dict[str, Any]) -> Any:
    """One naive call: whole image, one object's mask, batch 1; returns the pasted-back image."""
    import torch

    res = edit["resolution"]
    return pipe(
        prompt=edit["prompt"],
        negative_prompt=NEGATIVE,
        image=image,
        mask_image=mask,
        padding_mask_crop=edit["pad"],
        height=res,
        width=res,
        num_inference_steps=edit["steps"],
        guidance_scale=edit["guidance"],
        strength=edit["strength"],
        generator=torch.Generator("cpu").manual_seed(edit["seed"]),
    ).images[0]


def baseline_image(pipe: Any, src: Path, dst: Path, anns: list[dict], plan: PlanSettings) -> float:
    """Redraw the objects of one image in turn and save it; return seconds spent in the model."""
    names = {1: "circle", 3: "square", 7: "triangle"}
    with Image.open(src) as img:
        image = img.convert("RGB")
    model_s = 0.0
    for ann in anns:
        edit = {
            "prompt": PROMPT.format(name=names.get(ann["category_id"], "object")),
            "pad": context_pad(ann, plan),
            "seed": derive_seed(plan.seed, ann["image_id"], ann["id"], 0),
            **{k: getattr(plan, k) for k in ("resolution", "steps", "guidance", "strength")},
        }
        mask = object_mask(ann, image.size, plan.dilate)
        t0 = time.perf_counter()
        image = baseline_call(pipe, image, mask, edit)
        model_s += time.perf_counter() - t0
    image.save(dst, format="PNG", compress_level=1)
    return model_s


def time_baseline(
    pipe: Any, coco: Path, out: Path, plan: PlanSettings, limit: int | None = None
) -> dict[str, float]:
    """Run the naive loop over the dataset (JSON read, decode, calls, saves) and time it.

    ``limit``: only the first images (objects/s is what compares; the loop is slow).
    """
    reset_device_peak()
    started = time.perf_counter()
    ds = json.loads(coco.read_text(encoding="utf-8"))
    todo = eligible(ds, plan)
    out.mkdir(parents=True)
    objects, model_s = 0, 0.0
    for img in ds["images"][:limit]:
        anns = todo[img["id"]]
        if not anns:
            continue
        src = coco.parent / "images" / img["file_name"]
        model_s += baseline_image(pipe, src, out / f"{Path(img['file_name']).stem}.png", anns, plan)
        objects += len(anns)
    seconds = time.perf_counter() - started
    return side_figures(objects, seconds, model_s)


def time_tool(
    inpainter: DiffusersInpainter, coco: Path, prompts: Path, out: Path, args: argparse.Namespace
) -> dict[str, float]:
    """Run the tool with the prebuilt model; wall time of ``run()`` and its own model time."""
    options = inpaint_aug.RunOptions(
        coco=coco, prompts=prompts, out=out, batch_size=args.batch_size, plan=plan_settings(args)
    )
    verifier = None
    if args.verify != "none":
        from inpaint_aug.pipeline.verifier_loading import load_verifier

        verifier = load_verifier(args.verify, None, inpainter.device, args.dtype, None)
    reset_device_peak()
    started = time.perf_counter()
    if args.profile:
        report = profiled_run(options, inpainter, args.profile)
    else:
        report = inpaint_aug.run(options, inpainter=inpainter, verifier=verifier)
    seconds = time.perf_counter() - started
    figures = side_figures(report.objects_edited, seconds, report.seconds_model)
    figures["seconds_verify"] = report.seconds_verify
    figures["verify_share"] = report.seconds_verify / report.seconds_total
    figures["run_seconds_total"] = report.seconds_total
    busy = report.seconds_model + report.seconds_verify
    figures["overhead_share"] = 1.0 - busy / report.seconds_total
    return figures


def profiled_run(options: Any, inpainter: DiffusersInpainter, top: int) -> Any:
    """``run()`` under cProfile; prints to stderr the top functions by cumulative time, then
    the top ones of ``inpaint_aug`` outside the model call (``backend.py``)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    report = profiler.runcall(inpaint_aug.run, options, inpainter=inpainter)
    stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative")
    stats.print_stats(top)
    print("-- inpaint_aug outside backend.py --", file=sys.stderr)
    stats.print_stats(r"inpaint_aug[/\\](?!backend\.py)", top)
    return report


def side_figures(objects: int, seconds: float, model_s: float) -> dict[str, float]:
    """Counts, times, objects/s and device memory peak for one side."""
    return {
        "objects": objects,
        "seconds": seconds,
        "seconds_model": model_s,
        "objects_per_s": objects / seconds if seconds > 0 else 0.0,
        "peak_device_mb": device_peak_mb(),
    }


def warm_up(inpainter: DiffusersInpainter, args: argparse.Namespace, device: str) -> None:
    """One batched call and one naive call, one step each: lazy inits and kernel choice."""
    res, rng = args.resolution, np.random.default_rng(0)
    pixels = rng.integers(0, 256, (res, res, 3), dtype=np.uint8)
    mask = np.zeros((res, res), np.uint8)
    mask[res // 4 : 3 * res // 4, res // 4 : 3 * res // 4] = 255
    request = InpaintRequest(pixels, mask, "warm up", NEGATIVE, 0, 1, args.guidance, args.strength)
    if args.control != "none":
        request = replace(request, control=edge_map(pixels), control_scale=1.0)
    inpainter.inpaint([request] * args.batch_size)
    if not args.skip_baseline:
        edit = {"prompt": "warm up", "pad": 8, "seed": 0, "resolution": res, "steps": 1}
        edit |= {"guidance": args.guidance, "strength": args.strength}
        whole = Image.fromarray(np.pad(pixels, ((16, 16), (16, 16), (0, 0)), mode="edge"))
        baseline_call(inpainter.pipe, whole, Image.fromarray(np.pad(mask, 16)), edit)
    synchronize(device)


def reset_device_peak() -> None:
    """Start a new device-memory peak (CUDA only)."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def device_peak_mb() -> float | None:
    """Peak CUDA memory allocated since the last reset, in MB; ``None`` off CUDA."""
    import torch

    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return None
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def synchronize(device: str) -> None:
    """Wait for queued device work (timings must not leak across phases)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB else


def machine_facts(device: str, dtype: Any) -> dict[str, Any]:
    """Torch version, device name, CPU count and threads, dtype."""
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = platform.processor() or platform.machine()
    return {
        "torch": torch.__version__,
        "device": device,
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "dtype": str(dtype).removeprefix("torch."),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
    }


def settings_dict(args: argparse.Namespace) -> dict[str, Any]:
    """The benchmark settings, as recorded in the JSON and the header."""
    keys = ("arch", "images", "size", "objects", "resolution", "steps", "guidance", "strength")
    return {k: getattr(args, k) for k in keys} | {
        "batch_size": args.batch_size,
        "min_size": args.min_size,
        "baseline": not args.skip_baseline,
        "baseline_images": args.baseline_images,
        "verify": args.verify,
        "compile": args.compile,
        "control": args.control,
        "mode": args.mode,
    }


def summarize(machine: dict, settings: dict, tool: dict, base: dict | None) -> dict[str, Any]:
    """The figures the script prints and dumps."""
    ratio = None
    if base and base["objects_per_s"] > 0:
        ratio = tool["objects_per_s"] / base["objects_per_s"]
    return {
        "machine": machine,
        "settings": settings,
        "tool": tool,
        "baseline": base,
        "tool_objects_per_s": tool["objects_per_s"],
        "baseline_objects_per_s": base["objects_per_s"] if base else None,
        "ratio": ratio,
        "overhead_share": tool["overhead_share"],
        "peak_rss_mb": peak_rss_mb(),
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    """A number for the table, ``n/a`` for ``None``."""
    return "n/a" if value is None else format(value, spec)


def print_table(figures: dict[str, Any]) -> None:
    """Header with machine facts and settings, one row per side, then the summary line."""
    m, s = figures["machine"], figures["settings"]
    print(
        f"torch {m['torch']} | {m['device']}: {m['device_name']} | {m['cpu_count']} cpus, "
        f"{m['torch_threads']} torch threads | dtype {m['dtype']} | load {m['load_average_1m']}"
    )
    print("settings: " + ", ".join(f"{k}={v}" for k, v in s.items()))
    print(f"{'side':<9}{'objects':>8}{'seconds':>9}{'model s':>9}{'objects/s':>11}{'dev MB':>9}")
    for side in ("tool", "baseline"):
        row = figures[side]
        if row is None:
            continue
        print(
            f"{side:<9}{row['objects']:>8}{row['seconds']:>9.2f}{row['seconds_model']:>9.2f}"
            f"{row['objects_per_s']:>11.2f}{fmt(row['peak_device_mb'], '.0f'):>9}"
        )
    share = figures["overhead_share"]
    print(
        f"ratio tool/baseline {fmt(figures['ratio'])}x | tool overhead share {share:.1%} | "
        f"peak RSS {figures['peak_rss_mb']:.0f} MB"
    )
    if "tflop_per_object" in figures:
        print(
            f"model FLOPs {figures['tflop_per_object']:.3f} TFLOP/object (from the configs; "
            f"ControlNet {figures['controlnet_tflop_per_object']:.3f}) | tool "
            f"{figures['tool_tflops']:.3f} TFLOP/s ({figures['tool_model_tflops']:.3f} in model "
            f"calls), baseline {fmt(figures['baseline_tflops'], '.3f')} | peak "
            f"{fmt(figures['peak_tflops'], '.1f')} TFLOP/s, fraction "
            f"{fmt(figures['fraction_of_peak'], '.1%')} | warm-up {figures['warmup_seconds']:.1f} s"
        )
    tool = figures["tool"]
    if tool.get("seconds_verify"):
        print(
            f"verifier {s.get('verify')}: {tool['seconds_verify']:.2f} s, "
            f"{tool['verify_share']:.1%} of the run, "
            f"{tool['seconds_verify'] / max(tool['objects'], 1) * 1000:.1f} ms per object"
        )


def main(argv: list[str] | None = None) -> int:
    """Build the data and the model, warm up, time both sides, print and dump the figures."""
    import torch

    args = parse_args(argv)
    device = pick_device(args.device)
    dtype = getattr(torch, DTYPES[args.dtype or default_dtype(args.arch, device)])
    inpainter = build_inpainter(args, device, dtype)
    no_baseline = args.arch == "standin" or args.control != "none" or args.mode != "object"
    args.skip_baseline = args.skip_baseline or no_baseline  # the naive loop has no such mode
    with tempfile.TemporaryDirectory(prefix="inpaint-aug-bench-") as tmp:
        root = Path(tmp)
        coco, prompts = build_dataset(root, args)
        started = time.perf_counter()
        if args.arch != "standin":
            warm_up(inpainter, args, device)
        warm_s = time.perf_counter() - started
        rounds = [
            time_round(inpainter, coco, prompts, root / f"round{r}", args)
            for r in range(args.rounds)
        ]
    tool, base = median_round(rounds)
    machine = machine_facts(device, dtype)
    figures = summarize(machine, settings_dict(args), tool, base)
    figures["rounds"] = [
        {"tool": t["objects_per_s"], "baseline": b and b["objects_per_s"]} for t, b in rounds
    ]
    figures["warmup_seconds"] = warm_s  # includes compiling with --compile
    if inpainter.pipe is not None:
        figures |= flop_figures(inpainter.pipe, args, figures, machine["device_name"])
    print_table(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


def time_round(
    inpainter: Any, coco: Path, prompts: Path, root: Path, args: argparse.Namespace
) -> tuple[dict, dict | None]:
    """One round: the tool, then (unless skipped) the naive loop, on the same model and data."""
    tool = time_tool(inpainter, coco, prompts, root / "tool", args)
    if not tool["objects"]:
        sys.exit("no object was redrawn: use more --images or --objects, or a lower --min-size")
    if args.skip_baseline:
        return tool, None
    limit, plan = args.baseline_images, plan_settings(args)
    base = time_baseline(inpainter.pipe, coco, root / "baseline", plan, limit)
    if args.rounds > 1:
        ratio = tool["objects_per_s"] / max(base["objects_per_s"], 1e-12)
        print(
            f"round: tool {tool['objects_per_s']:.3f}, baseline {base['objects_per_s']:.3f} "
            f"objects/s, ratio {ratio:.2f}x",
            flush=True,
        )
    return tool, base


def median_round(rounds: list[tuple[dict, dict | None]]) -> tuple[dict, dict | None]:
    """The round with the median ratio (the median tool objects/s without a baseline)."""

    def key(pair: tuple[dict, dict | None]) -> float:
        tool, base = pair
        return tool["objects_per_s"] / base["objects_per_s"] if base else tool["objects_per_s"]

    return sorted(rounds, key=key)[len(rounds) // 2]


def flop_figures(pipe: Any, args: argparse.Namespace, figures: dict, device: str) -> dict:
    """Model FLOPs per object (from the configs), achieved TFLOP/s, and the share of peak."""
    budget = flops.count_pipeline(pipe, args.resolution)
    schedule = (args.steps, args.guidance, args.strength)
    per_object = budget.per_object(*schedule)
    peak = args.peak_tflops or flops.peak_tflops(device)
    tool, base = figures["tool"], figures["baseline"]
    out = {
        "tflop_per_object": per_object / 1e12,
        "controlnet_tflop_per_object": budget.controlnet_per_object(*schedule) / 1e12,
        "tool_tflops": flops.achieved(tool["objects"], tool["seconds"], per_object),
        "tool_model_tflops": flops.achieved(tool["objects"], tool["seconds_model"], per_object),
        "baseline_tflops": None,
        "peak_tflops": peak,
        "fraction_of_peak": None,
    }
    if base:
        out["baseline_tflops"] = flops.achieved(base["objects"], base["seconds"], per_object)
    if peak:
        out["fraction_of_peak"] = out["tool_tflops"] / peak
    return out


def default_dtype(arch: str, device: str) -> str:
    """fp32, except the full-size model on a GPU, which runs in bf16."""
    return "bf16" if arch == "sd15" and device == "cuda" else "fp32"


if __name__ == "__main__":
    sys.exit(main())

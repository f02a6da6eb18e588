"""Smoke test of benchmarks/throughput.py: it runs end to end and dumps its figures.

Never a timing assertion: the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "throughput.py"
KEYS = (
    "tool_objects_per_s",
    "baseline_objects_per_s",
    "ratio",
    "overhead_share",
    "peak_rss_mb",
    "tflop_per_object",
    "tool_tflops",
)


def test_throughput_script_runs_and_dumps_figures(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    args = ["--arch", "tiny", "--device", "cpu", "--images", "2", "--size", "128x96"]
    args += ["--resolution", "64", "--steps", "1", "--batch-size", "2", "--json", str(out)]
    args += ["--rounds", "2"]
    done = _run(args)
    figures = json.loads(out.read_text(encoding="utf-8"))
    for key in KEYS:
        value = figures[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert value > 0, (key, value)
    assert figures["tool"]["objects"] == figures["baseline"]["objects"] > 0
    assert "ratio tool/baseline" in done.stdout
    assert figures["fraction_of_peak"] is None  # no peak known for a CPU
    assert len(figures["rounds"]) == 2 and all(r["baseline"] > 0 for r in figures["rounds"])
    assert "TFLOP/object" in done.stdout


def test_standin_measures_the_cpu_side_alone(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    _run(["--arch", "standin", "--images", "3", "--size", "256x192", "--json", str(out)])
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["baseline"] is None and figures["tool_objects_per_s"] > 0
    assert "tflop_per_object" not in figures


def test_controlnet_and_background_modes_report_their_costs(tmp_path: Path) -> None:
    small = ["--images", "2", "--size", "128x96", "--resolution", "64", "--steps", "1"]
    control, background = tmp_path / "control.json", tmp_path / "background.json"
    _run([*small, "--batch-size", "2", "--control", "canny", "--json", str(control)])
    _run([*small, "--batch-size", "2", "--mode", "background", "--json", str(background)])
    with_net = json.loads(control.read_text(encoding="utf-8"))
    assert with_net["baseline"] is None and with_net["controlnet_tflop_per_object"] > 0
    scenes = json.loads(background.read_text(encoding="utf-8"))
    assert scenes["tool"]["objects"] == 2  # one background per image
    assert scenes["controlnet_tflop_per_object"] == 0


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_planning_script_counts_every_repeated_image() -> None:
    script = ROOT / "benchmarks" / "planning.py"
    args = [sys.executable, str(script), "--images", "6", "--distinct", "2", "--repeats", "1"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("6 images, ") and "copies 2:" in line and "ms per annotation" in line

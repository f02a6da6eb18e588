"""The benchmark's FLOP count (benchmarks/flops.py) against hand counts of SD 1.5 inpainting.

The hand counts (issue 12, design.md): the UNet ~0.80 TFLOP per forward at 64x64 latents, the
VAE encoder ~1.12 and decoder ~2.52 TFLOP at 512x512, ~44 TFLOP per object at 25 steps with
classifier-free guidance. The count must match each within 5%.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import flops

T = 1e12


@pytest.fixture(scope="module")
def sd15() -> flops.FlopBudget:
    import torch
    from sd15 import sd15_unet_vae

    with torch.device("meta"):
        unet, vae = sd15_unet_vae()
    return flops.count_configs(type(unet), dict(unet.config), type(vae), dict(vae.config), 512)


@pytest.mark.parametrize(
    ("part", "hand"), [("unet", 0.80), ("vae_encode", 1.12), ("vae_decode", 2.52)]
)
def test_sd15_counts_match_the_hand_count(sd15, part, hand):
    assert getattr(sd15, part) / T == pytest.approx(hand, rel=0.05)


@pytest.mark.parametrize(
    ("steps", "guidance", "strength", "hand"),
    [
        (25, 7.5, 1.0, 25 * 2 * 0.80 + 1.12 + 2.52),  # ~43.6: CFG doubles the UNet batch
        (25, 1.0, 1.0, 25 * 0.80 + 1.12 + 2.52),  # no guidance: one UNet pass per step
        (25, 7.5, 0.5, 12 * 2 * 0.80 + 2 * 1.12 + 2.52),  # int(12.5) steps; crop encoded too
        (4, 1.0, 1.0, 4 * 0.80 + 1.12 + 2.52),  # the fast preset
    ],
)
def test_per_object_flops(sd15, steps, guidance, strength, hand):
    assert sd15.per_object(steps, guidance, strength) / T == pytest.approx(hand, rel=0.05)


def test_count_follows_the_config_of_the_tiny_pipeline(tiny_inpainter):
    pipe = tiny_inpainter.pipe
    small = flops.count_pipeline(pipe, 32)
    large = flops.count_pipeline(pipe, 64)
    assert 0 < small.unet < large.unet
    # 4x the pixels: convolutions cost 4x, the mid-block attention 16x
    assert 4.0 < large.vae_decode / small.vae_decode < 16.0
    assert small.controlnet == 0.0


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H200", 989.4),
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.1),
        ("NVIDIA L4", 121.0),
        ("Tesla T4", 65.0),
        ("AMD EPYC", None),
    ],
)
def test_peak_table(name, peak):
    assert flops.peak_tflops(name) == peak


def test_achieved():
    assert flops.achieved(10, 2.0, 4e12) == pytest.approx(20.0)

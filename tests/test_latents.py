"""Batched VAE encoding: one encoder call per batch, results equal to diffusers' per-item loop.

The bound: the batched convolution may round differently from batch-1 calls, so results may
differ by float rounding only: at most 2/255 on any uint8 pixel, and on average far less.
"""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_aug.pipeline.backend import DiffusersInpainter, InpaintRequest
from inpaint_aug.pipeline.latents import BATCHED, batch_vae_encode

RES = 64


def _requests(n: int, strength: float = 1.0) -> list[InpaintRequest]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        pixels = rng.integers(0, 256, (RES, RES, 3), dtype=np.uint8)
        mask = np.zeros((RES, RES), np.uint8)
        mask[8 + i : 40 + i, 10:50] = 255
        out.append(InpaintRequest(pixels, mask, f"a ball {i}", "blurry", 100 + i, 4, 7.5, strength))
    return out


class _Counting:
    """Wraps ``vae.encode`` to count calls and the batch size of each."""

    def __init__(self, vae):
        self.vae, self.sizes = vae, []
        self._encode = vae.encode

    def __call__(self, x, *args, **kwargs):
        self.sizes.append(int(x.shape[0]))
        return self._encode(x, *args, **kwargs)


def _inpainter(batched: bool) -> tuple[DiffusersInpainter, _Counting]:
    from inpaint_aug.pipeline.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline()  # seeded: the same weights each time
    inpainter = DiffusersInpainter(pipe, "tiny-random")
    if not batched:
        del pipe._encode_vae_image  # back to the class's per-item method
    counter = _Counting(pipe.vae)
    pipe.vae.encode = counter
    return inpainter, counter


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_batched_encode_matches_the_per_item_loop(strength):
    batch = _requests(4, strength)
    fast, fast_calls = _inpainter(batched=True)
    slow, slow_calls = _inpainter(batched=False)
    got, want = fast.inpaint(batch), slow.inpaint(batch)
    calls = 1 if strength == 1.0 else 2  # the masked crops; with strength < 1 the crops too
    assert fast_calls.sizes == [4] * calls
    assert slow_calls.sizes == [1] * (4 * calls)
    for a, b in zip(got, want, strict=True):
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.05


def test_one_item_and_other_pipelines_keep_diffusers_method():
    fast, calls = _inpainter(batched=True)
    fast.inpaint(_requests(1))
    assert calls.sizes == [1]

    class Other:
        def _encode_vae_image(self, image, generator):
            return image

    other = Other()
    assert not batch_vae_encode(other)
    assert "_encode_vae_image" not in vars(other)
    assert "StableDiffusionInpaintPipeline" in BATCHED

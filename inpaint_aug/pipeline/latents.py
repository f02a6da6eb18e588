"""One VAE encoder call per batch in diffusers' SD inpainting pipelines.

With one seeded generator per item (which keeps an item's result independent of its batch),
diffusers encodes the masked crops one at a time (``vae.encode(image[i:i+1])`` in
``_encode_vae_image``): a batch of 16 makes 16 encoder calls at batch size 1. This module
replaces that method on a pipeline instance with one that encodes the whole batch in one call
and then draws each item's latent sample with that item's own generator, exactly as diffusers
does (same noise, same order), so results differ only by the float rounding of a batched
convolution (bounded in ``tests/test_latents.py``).

The SDXL pipelines (``StableDiffusionXLInpaintPipeline`` and its ControlNet sibling) are left
out: their ``_encode_vae_image`` also moves the VAE to fp32 for the encode when
``vae.config.force_upcast`` is set (the SDXL VAE overflows in fp16) and casts the latents back
to the input's dtype, which :func:`encode_batched` does not do.

Example:
    >>> batch_vae_encode(object())
    False
"""

from __future__ import annotations

import functools
from typing import Any

#: Pipelines whose ``_encode_vae_image`` is the per-item loop this module replaces.
BATCHED = frozenset({"StableDiffusionInpaintPipeline", "StableDiffusionControlNetInpaintPipeline"})


def batch_vae_encode(pipe: Any) -> bool:
    """Make ``pipe`` encode a batch of images in one VAE call; return whether it did.

    Only the pipelines named in :data:`BATCHED` are changed (others keep diffusers' method).
    """
    if type(pipe).__name__ not in BATCHED or not hasattr(pipe, "_encode_vae_image"):
        return False
    pipe._encode_vae_image = functools.partial(
        encode_batched, pipe, fallback=pipe._encode_vae_image
    )
    return True


def encode_batched(pipe: Any, image: Any, generator: Any, fallback: Any = None) -> Any:
    """Scaled latents of ``image`` ``(B, 3, H, W)``: one encoder call, per-item sampling.

    Args:
        pipe: the pipeline (its ``vae``).
        image: the images, in the VAE's range.
        generator: one ``torch.Generator`` per image (a single one or ``None``: ``fallback``).
        fallback: diffusers' own method, for the cases this one does not cover.
    """
    from diffusers.utils.torch_utils import randn_tensor

    if not isinstance(generator, list) or image.shape[0] <= 1:
        return fallback(image=image, generator=generator)
    encoded = pipe.vae.encode(image)
    dist = getattr(encoded, "latent_dist", None)
    if dist is None:
        return fallback(image=image, generator=generator)
    import torch

    draws = [
        randn_tensor(
            dist.mean[i : i + 1].shape,
            generator=gen,
            device=dist.parameters.device,
            dtype=dist.parameters.dtype,
        )
        for i, gen in enumerate(generator)
    ]
    latents = dist.mean + dist.std * torch.cat(draws)
    return pipe.vae.config.scaling_factor * latents

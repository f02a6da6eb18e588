"""What differs between the model families at call time: prompt embeddings and control inputs.

One :class:`DiffusersInpainter` drives every family; this module gives each pipeline call the
inputs its family takes, with each distinct prompt encoded once and cached:

* SD 1.5 (``StableDiffusionInpaintPipeline``, also with a ControlNet): ``prompt_embeds`` and
  ``negative_prompt_embeds``;
* SDXL (``StableDiffusionXLInpaintPipeline``, also with a ControlNet): both text encoders'
  embeddings and the pooled ones, for the prompt and the negative prompt (four tensors);
* FLUX.1 Fill (``FluxFillPipeline``): T5 ``prompt_embeds`` and CLIP ``pooled_prompt_embeds``.
  FLUX Fill has no negative prompt and no classifier-free guidance: ``guidance_scale`` is the
  guidance the model was distilled with, fed to it as an input (its authors use 30), so the
  prompts file's ``negative`` is not used there;
* any other pipeline: plain prompt strings.

With shape control, each request's edge map goes in as ``control_image`` (one per item) and the
batch's shared scale as ``controlnet_conditioning_scale``.

Example:
    >>> PromptCache().inputs(pipe, batch)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from inpaint_aug.choices import ModelFamily
from inpaint_aug.model_family import family_of_class

CACHE_SIZE = 4096  # prompt pairs kept before the cache starts again


def family_of(pipe: Any) -> ModelFamily:
    """The family of a loaded pipeline, from its class."""
    return family_of_class(type(pipe).__name__)


def denoiser_name(pipe: Any) -> str:
    """The pipeline's denoising network: ``unet`` (SD, SDXL) or ``transformer`` (FLUX)."""
    return "unet" if getattr(pipe, "unet", None) is not None else "transformer"


def control_inputs(batch: Sequence[Any]) -> dict[str, Any]:
    """The ControlNet's inputs: every request's edge map, and the batch's one scale."""
    import torch

    if batch[0].control is None:
        return {}
    maps = torch.from_numpy(np.stack([r.control for r in batch])).permute(0, 3, 1, 2)
    return {
        "control_image": maps.float() / 255.0,
        "controlnet_conditioning_scale": float(batch[0].control_scale),
    }


class PromptCache:
    """Prompt embeddings computed once per distinct prompt (and negative prompt), per family."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, bool], tuple[Any, ...]] = {}

    def inputs(self, pipe: Any, batch: Sequence[Any]) -> dict[str, Any]:
        """The text inputs of one call for ``batch`` (requests with prompts and guidance)."""
        family = family_of(pipe)
        guided = batch[0].guidance > 1.0
        if not hasattr(pipe, "encode_prompt"):
            return {
                "prompt": [r.prompt for r in batch],
                "negative_prompt": [r.negative_prompt for r in batch],
            }
        import torch

        if family is ModelFamily.flux:
            names = ("prompt_embeds", "pooled_prompt_embeds")
        elif family is ModelFamily.sdxl:
            names = (
                "prompt_embeds",
                "negative_prompt_embeds",
                "pooled_prompt_embeds",
                "negative_pooled_prompt_embeds",
            )
        else:
            names = ("prompt_embeds", "negative_prompt_embeds")
        parts = [self._embed(pipe, family, r.prompt, r.negative_prompt, guided) for r in batch]
        return {name: torch.cat([p[i] for p in parts]) for i, name in enumerate(names)}

    def _embed(
        self, pipe: Any, family: ModelFamily, prompt: str, negative: str, guided: bool
    ) -> tuple[Any, ...]:
        """The embeddings of one prompt pair, computed once and cached."""
        if family is ModelFamily.flux:
            negative, guided = "", False  # no negative prompt, no classifier-free guidance
        key = (prompt, negative, guided)
        if key not in self._cache:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = _encode(pipe, family, prompt, negative, guided)
        return self._cache[key]


def _encode(
    pipe: Any, family: ModelFamily, prompt: str, negative: str, guided: bool
) -> tuple[Any, ...]:
    """One family's ``encode_prompt``; a missing negative (no guidance) stands as the prompt."""
    device = pipe._execution_device
    if family is ModelFamily.flux:
        embeds, pooled, _ = pipe.encode_prompt(prompt, None, device=device)
        return embeds, pooled
    if family is ModelFamily.sdxl:
        pos, neg, pooled, neg_pooled = pipe.encode_prompt(
            prompt, None, device, 1, guided, negative_prompt=negative
        )
        return (
            pos,
            neg if neg is not None else pos,
            pooled,
            neg_pooled if neg_pooled is not None else pooled,
        )
    pos, neg = pipe.encode_prompt(prompt, device, 1, guided, negative_prompt=negative)
    return pos, neg if neg is not None else pos

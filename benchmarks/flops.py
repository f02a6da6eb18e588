"""Model FLOPs per redrawn object, counted from the pipeline's own model configs.

The UNet (and ControlNet, when there is one) and the VAE are rebuilt from their configs on the
meta device (no memory, no weights) and run once under ``torch.utils.flop_counter``: the count
follows whatever architecture the configs describe, not a formula for one model. A
multiply-add counts as two FLOPs.

Per object, a run makes ``int(steps x strength)`` UNet forwards, doubled with classifier-free
guidance (guidance > 1), one VAE encode of the masked crop (two with strength < 1: the crop
too), and one VAE decode. Text encoding is left out: prompt embeddings are cached per distinct
prompt, so its cost per object tends to zero on a real run.

Example:
    >>> budget = count_pipeline(pipe, resolution=512)  # doctest: +SKIP
    >>> budget.per_object(steps=25, guidance=7.5, strength=1.0) / 1e12  # doctest: +SKIP
    43.8
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Dense bf16/fp16 tensor-core peaks (TFLOP/s, no sparsity), by a name in the CUDA device name.
#: More specific names come first. ``--peak-tflops`` overrides the table.
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
)


def peak_tflops(device_name: str) -> float | None:
    """The table's peak for a CUDA device name, or ``None`` when it is not listed.

    Example:
        >>> peak_tflops("NVIDIA H100 80GB HBM3"), peak_tflops("NVIDIA H100 PCIe")
        (989.4, 756.0)
    """
    for name, peak in PEAK_TFLOPS:
        if name.lower() in device_name.lower():
            return peak
    return None


@dataclass(frozen=True)
class FlopBudget:
    """FLOPs of one forward of each model at one resolution, batch 1."""

    unet: float
    vae_encode: float
    vae_decode: float
    controlnet: float = 0.0

    def per_object(self, steps: int, guidance: float, strength: float) -> float:
        """Model FLOPs to redraw one object with these settings."""
        encodes = 1 if strength >= 1.0 else 2
        unet = _forwards(steps, guidance, strength) * self.unet
        vae = encodes * self.vae_encode + self.vae_decode
        return unet + self.controlnet_per_object(steps, guidance, strength) + vae

    def controlnet_per_object(self, steps: int, guidance: float, strength: float) -> float:
        """The ControlNet's share of :meth:`per_object` (0 without one)."""
        return _forwards(steps, guidance, strength) * self.controlnet


def _forwards(steps: int, guidance: float, strength: float) -> int:
    """Denoiser forwards per object: ``int(steps x strength)``, doubled by guidance > 1."""
    return int(steps * strength) * (2 if guidance > 1.0 else 1)


def count_flops(fn: Any) -> float:
    """FLOPs ``fn()`` performs, by torch's FLOP counter (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def count_pipeline(pipe: Any, resolution: int) -> FlopBudget:
    """The budget of a diffusers inpainting pipeline's UNet, VAE (and ControlNet) configs."""
    controlnet = getattr(pipe, "controlnet", None)
    unet = getattr(pipe.unet, "_orig_mod", pipe.unet)  # torch.compile wraps the whole UNet
    return count_configs(
        type(unet),
        dict(unet.config),
        type(pipe.vae),
        dict(pipe.vae.config),
        resolution,
        (type(controlnet), dict(controlnet.config)) if controlnet is not None else None,
    )


def count_configs(
    unet_cls: Any,
    unet_config: dict[str, Any],
    vae_cls: Any,
    vae_config: dict[str, Any],
    resolution: int,
    controlnet: tuple[Any, dict[str, Any]] | None = None,
) -> FlopBudget:
    """Rebuild the models on the meta device and count one forward of each."""
    import torch

    with torch.device("meta"):
        unet = unet_cls.from_config(unet_config)
        vae = vae_cls.from_config(vae_config)
        net = controlnet[0].from_config(controlnet[1]) if controlnet else None
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    side = resolution // scale
    image = torch.zeros(1, 3, resolution, resolution, device="meta")
    latents = torch.zeros(1, vae.config.latent_channels, side, side, device="meta")
    inputs = _unet_inputs(unet, side)
    with torch.no_grad():
        unet_flops = count_flops(lambda: unet(**inputs))
        encode = count_flops(lambda: vae.encode(image))
        decode = count_flops(lambda: vae.decode(latents))
        cn = 0.0
        if net is not None:
            cond = {k: v for k, v in inputs.items() if k != "sample"}
            sample = torch.zeros(1, net.config.in_channels, side, side, device="meta")
            cn = count_flops(lambda: net(sample=sample, controlnet_cond=image, **cond))
    return FlopBudget(unet_flops, encode, decode, cn)


def _unet_inputs(unet: Any, side: int) -> dict[str, Any]:
    """Meta inputs for one UNet forward: latents, a timestep, 77 text tokens (and SDXL's extras)."""
    import torch

    config = unet.config
    cross = config.cross_attention_dim
    cross = cross[0] if isinstance(cross, (list, tuple)) else cross
    inputs: dict[str, Any] = {
        "sample": torch.zeros(1, config.in_channels, side, side, device="meta"),
        "timestep": torch.tensor([10], device="meta"),
        "encoder_hidden_states": torch.zeros(1, 77, cross, device="meta"),
    }
    if config.addition_embed_type == "text_time":  # SDXL: pooled text and size conditioning
        time_dim = config.addition_time_embed_dim
        pooled = config.projection_class_embeddings_input_dim - 6 * time_dim
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.zeros(1, pooled, device="meta"),
            "time_ids": torch.zeros(1, 6, device="meta"),
        }
    return inputs


def achieved(objects: int, seconds: float, flops_per_object: float) -> float:
    """Achieved TFLOP/s over a timed run (``nan`` when nothing was timed)."""
    if seconds <= 0:
        return math.nan
    return objects * flops_per_object / seconds / 1e12

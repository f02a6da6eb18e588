"""Which pipeline family a model is, read cheaply (no torch) before anything is planned.

The family decides the default crop resolution (the model's native size) and which options
apply. It comes from the ``_class_name`` of the model's ``model_index.json``: in a local
folder, or in the local Hugging Face cache for a hub id. A hub id that is not cached is named
by its id (``xl`` or ``flux`` in it), else taken for SD 1.5; loading then checks it again.

Example:
    >>> model_family("tiny-random")
    <ModelFamily.sd: 'sd'>
    >>> family_of_class("StableDiffusionXLInpaintPipeline")
    <ModelFamily.sdxl: 'sdxl'>
    >>> NATIVE_RESOLUTION[ModelFamily.flux]
    1024
    >>> controlnet_for(ModelFamily.sdxl, DEFAULT_CONTROLNET)
    'diffusers/controlnet-canny-sdxl-1.0'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inpaint_aug.choices import Control, ModelFamily
from inpaint_aug.errors import OptionsError

LCM_LORA = "latent-consistency/lcm-lora-sdv1-5"
LCM_LORA_SDXL = "latent-consistency/lcm-lora-sdxl"
DEFAULT_CONTROLNET = "lllyasviel/control_v11p_sd15_canny"
DEFAULT_CONTROLNET_SDXL = "diffusers/controlnet-canny-sdxl-1.0"
FAMILY_NAME = {ModelFamily.sd: "SD 1.5", ModelFamily.sdxl: "SDXL", ModelFamily.flux: "FLUX"}
NATIVE_RESOLUTION = {ModelFamily.sd: 512, ModelFamily.sdxl: 1024, ModelFamily.flux: 1024}
INDEX = "model_index.json"


def family_of_class(class_name: str | None) -> ModelFamily:
    """The family of a diffusers pipeline class name (anything else is driven as SD 1.5)."""
    name = class_name or ""
    if name.startswith("Flux"):
        return ModelFamily.flux
    if name.startswith("StableDiffusionXL"):
        return ModelFamily.sdxl
    return ModelFamily.sd


def model_family(model: str) -> ModelFamily:
    """The family of ``--model``: a folder, a ``.safetensors`` file (SD 1.5), a hub id, tiny.

    Never raises and never goes to the network: a missing or unreadable index is the family
    the name suggests (loading reports the real problem later, with what to do).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return family_of_class(_class_name(path / INDEX))
    if path.is_file() or model.count("/") != 1:
        return ModelFamily.sd  # a single-file SD checkpoint, tiny-random, or no model at all
    cached = _cached_index(model)
    if cached is not None:
        return family_of_class(_class_name(cached))
    lower = model.lower()
    if "flux" in lower:
        return ModelFamily.flux
    return ModelFamily.sdxl if "xl" in lower else ModelFamily.sd


def _class_name(index: Path) -> str | None:
    """``_class_name`` of a ``model_index.json``, or ``None`` when it cannot be read."""
    data = read_config(index)
    name = data.get("_class_name") if data is not None else None
    return name if isinstance(name, str) else None


def read_config(path: Path) -> dict[str, Any] | None:
    """A JSON config file as a dict, or ``None`` when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cached_index(repo_id: str) -> Path | None:
    """The cached ``model_index.json`` of a hub id (main revision), or ``None``."""
    return cached_file(repo_id, INDEX)


def cached_file(repo_id: str, filename: str) -> Path | None:
    """A file of a hub id in the local Hugging Face cache (main revision), or ``None``."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # a malformed id, an unreadable cache: not known locally
        return None
    return Path(found) if isinstance(found, str) else None


def follow_model(model: str, resolution: int | None, control: Control) -> tuple[ModelFamily, int]:
    """The model's family and the crop resolution to use (``None``: the model's native size).

    Raises:
        OptionsError: shape control with a FLUX model (diffusers has ControlNet inpainting
            pipelines for SD 1.5 and SDXL, none for FLUX.1 Fill).
    """
    family = model_family(model) if isinstance(model, str) else ModelFamily.sd
    if control is not Control.none and family is ModelFamily.flux:
        raise OptionsError.free(
            f"--control {control}: shape control needs an SD 1.5 or SDXL inpainting model, and "
            f"--model {model} is FLUX (FLUX.1 Fill has no ControlNet inpainting pipeline here); "
            "use --control none"
        )
    return family, NATIVE_RESOLUTION[family] if resolution is None else resolution


def controlnet_for(family: ModelFamily, controlnet: str) -> str:
    """The ControlNet a run loads: the SD 1.5 default stands for the family's own default."""
    if family is ModelFamily.sdxl and controlnet == DEFAULT_CONTROLNET:
        return DEFAULT_CONTROLNET_SDXL
    return controlnet


def controlnet_misfit(
    net: Mapping[str, Any], family: ModelFamily, unet: Mapping[str, Any] | None = None
) -> str | None:
    """Why a ControlNet's config does not fit the model, or ``None`` when it fits.

    An SDXL ControlNet has the SDXL UNet's added text-time embedding (``addition_embed_type``
    ``text_time``) and cross-attention on 2048 features; an SD 1.5 one has neither added
    embedding and 768 features. The model's own UNet config, when known, is matched exactly on
    both; else its family decides the embedding.

    Args:
        net: the ControlNet's ``config.json``.
        family: the model's family.
        unet: the model's UNet config, or ``None`` when it is not known without loading.
    """
    added, dim = net.get("addition_embed_type"), net.get("cross_attention_dim")
    want = "text_time" if family is ModelFamily.sdxl else None
    want_dim = None
    if unet is not None:
        want, want_dim = unet.get("addition_embed_type"), unet.get("cross_attention_dim")
    if added == want and (want_dim is None or dim == want_dim):
        return None
    made = "an SDXL" if added == "text_time" else "an SD 1.5-style"
    model = "" if want_dim is None else f" (cross_attention_dim {want_dim})"
    default = DEFAULT_CONTROLNET_SDXL if family is ModelFamily.sdxl else DEFAULT_CONTROLNET
    return (
        f"{made} ControlNet (cross_attention_dim {dim}, addition_embed_type {added or 'none'}) "
        f"does not fit the {FAMILY_NAME[family]} model{model}; pass an {FAMILY_NAME[family]} "
        f"ControlNet with --controlnet (default {default})"
    )


def lcm_lora_for(family: ModelFamily) -> str:
    """The default LCM-LoRA of ``--preset fast`` for a family.

    Raises:
        OptionsError: FLUX, which has none.
    """
    if family is ModelFamily.flux:
        raise OptionsError.free("--preset fast: there is no LCM-LoRA for FLUX models")
    return LCM_LORA_SDXL if family is ModelFamily.sdxl else LCM_LORA

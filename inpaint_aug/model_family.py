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
"""

from __future__ import annotations

import json
from pathlib import Path

from inpaint_aug.choices import Control, ModelFamily
from inpaint_aug.errors import OptionsError

LCM_LORA = "latent-consistency/lcm-lora-sdv1-5"
LCM_LORA_SDXL = "latent-consistency/lcm-lora-sdxl"
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
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("_class_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _cached_index(repo_id: str) -> Path | None:
    """The cached ``model_index.json`` of a hub id (main revision), or ``None``."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, INDEX)
    except Exception:  # a malformed id, an unreadable cache: not known locally
        return None
    return Path(found) if isinstance(found, str) else None


def follow_model(model: str, resolution: int | None, control: Control) -> tuple[ModelFamily, int]:
    """The model's family and the crop resolution to use (``None``: the model's native size).

    Raises:
        OptionsError: shape control with a model that is not SD 1.5 (the ControlNet
            inpainting pipeline is SD 1.5 only).
    """
    family = model_family(model) if isinstance(model, str) else ModelFamily.sd
    if control is not Control.none and family is not ModelFamily.sd:
        raise OptionsError.free(
            f"--control {control}: shape control needs an SD 1.5 inpainting model, and "
            f"--model {model} is {family.value.upper()}; use --control none"
        )
    return family, NATIVE_RESOLUTION[family] if resolution is None else resolution


def lcm_lora_for(family: ModelFamily) -> str:
    """The default LCM-LoRA of ``--preset fast`` for a family.

    Raises:
        OptionsError: FLUX, which has none.
    """
    if family is ModelFamily.flux:
        raise OptionsError.free("--preset fast: there is no LCM-LoRA for FLUX models")
    return LCM_LORA_SDXL if family is ModelFamily.sdxl else LCM_LORA

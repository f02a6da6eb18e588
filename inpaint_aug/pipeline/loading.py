"""Loading the diffusers pipeline and the LCM-LoRA: checks first, one line for every failure.

torch and diffusers are imported inside the functions, so importing this module is cheap.

Example:
    >>> check_lcm_lora(None)
    False
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from inpaint_aug.choices import ModelFamily
from inpaint_aug.errors import InpaintAugError, ModelError
from inpaint_aug.model_family import cached_file, controlnet_misfit, model_family, read_config
from inpaint_aug.pipeline.families import family_of
from inpaint_aug.pipeline.hub import check_lora, load_error, local_files_only

CONTROLNET_FIX = "pass --controlnet DIR (a local folder), or run once with network access"


def check_lcm_lora(lora: str | None) -> bool:
    """Check ``--lcm-lora`` before anything loads; return its ``local_files_only``.

    A folder or file must exist; a hub id goes through
    :func:`~inpaint_aug.pipeline.hub.check_lora`, so an uncached one fails at once offline.

    Raises:
        ModelError: a path that does not exist, a name that is neither a path nor a hub id
            like ``org/name``, or a hub LoRA that cannot load.
    """
    if lora is None:
        return False
    path = Path(lora).expanduser()
    if path.exists():
        return False
    if lora.count("/") != 1 or lora.startswith((".", "/", "~")) or lora.endswith("/"):
        raise ModelError(
            f"LCM-LoRA {lora}: no such file or folder, and not a hub id like 'org/name'"
        )
    return check_lora(lora)


def check_controlnet(controlnet: str | None, model: str | None = None) -> bool:
    """Check ``--controlnet`` before anything loads; return its ``local_files_only``.

    A folder must hold a ControlNet's ``config.json``; a hub id must be cached when the hub is
    off or out of reach (see :func:`~inpaint_aug.pipeline.hub.local_files_only`). With
    ``model``, a ControlNet config that can be read (a folder, a cached hub id) must fit it
    (see :func:`~inpaint_aug.model_family.controlnet_misfit`).

    Raises:
        ModelError: a missing folder, a folder without ``config.json``, a name that is neither
            a folder nor a hub id like ``org/name``, an uncached hub id offline, or a
            ControlNet made for another model family.
    """
    if controlnet is None:
        return False
    path = Path(controlnet).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"ControlNet {path}: not a diffusers ControlNet folder (no config.json)"
            )
        _check_fit(controlnet, path / "config.json", model)
        return False
    if path.is_file():
        raise ModelError(f"ControlNet {path}: a file; pass the folder that holds its config.json")
    if controlnet.count("/") != 1 or controlnet.startswith((".", "/", "~")):
        raise ModelError(
            f"ControlNet {controlnet}: no such folder, and not a hub id like 'org/name'"
        )
    offline = local_files_only(controlnet, "ControlNet", CONTROLNET_FIX)
    _check_fit(controlnet, cached_file(controlnet, "config.json"), model)
    return offline


def _check_fit(controlnet: str, config: Path | None, model: str | None) -> None:
    """Refuse a ControlNet whose config (when readable) does not fit ``model``'s UNet."""
    net = read_config(config) if config is not None else None
    if net is None or model is None:
        return
    why = controlnet_misfit(net, model_family(model), _unet_config(model))
    if why is not None:
        raise ModelError(f"ControlNet {controlnet}: {why}")


def _unet_config(model: str) -> dict[str, Any] | None:
    """The model's UNet config when it is readable unloaded (a folder, a cached hub id)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return read_config(path / "unet" / "config.json")
    if path.is_file() or model.count("/") != 1:
        return None  # a single-file checkpoint or tiny-random: the family decides
    found = cached_file(model, "unet/config.json")
    return read_config(found) if found is not None else None


def with_controlnet(pipe: Any, controlnet: str, dtype: Any, offline: bool) -> Any:
    """The ControlNet inpainting pipeline: ``pipe``'s own components plus the ControlNet.

    Safetensors only; every failure is one line naming the ControlNet, a ControlNet that does
    not fit ``pipe``'s UNet too (checked on the loaded configs, before any pipeline is built).
    """
    from diffusers import ControlNetModel

    path = Path(controlnet).expanduser()
    source = str(path) if path.is_dir() else controlnet
    try:
        net = ControlNetModel.from_pretrained(
            source, torch_dtype=dtype, local_files_only=offline, use_safetensors=True
        )
        why = controlnet_misfit(net.config, family_of(pipe), pipe.unet.config)
        if why is not None:
            raise ModelError(f"ControlNet {controlnet}: {why}")
        return _controlnet_pipeline(pipe, net)
    except InpaintAugError:
        raise
    except Exception as err:  # every library failure becomes one line
        raise load_error("ControlNet", controlnet, err) from None


def _controlnet_pipeline(pipe: Any, net: Any) -> Any:
    """SD 1.5's or SDXL's ControlNet inpainting pipeline, from ``pipe``'s components and ``net``.

    SDXL keeps ``pipe``'s own settings: the aesthetic-score time ids, zeroed empty negative
    prompts, and the invisible watermark only if ``pipe`` had one.
    """
    from diffusers import (
        StableDiffusionControlNetInpaintPipeline,
        StableDiffusionXLControlNetInpaintPipeline,
    )

    if family_of(pipe) is not ModelFamily.sdxl:
        return StableDiffusionControlNetInpaintPipeline(**pipe.components, controlnet=net)
    return StableDiffusionXLControlNetInpaintPipeline(
        **pipe.components,
        controlnet=net,
        requires_aesthetics_score=pipe.config.get("requires_aesthetics_score", False),
        force_zeros_for_empty_prompt=pipe.config.get("force_zeros_for_empty_prompt", True),
        add_watermarker=getattr(pipe, "watermark", None) is not None,
    )


def use_lcm(pipe: Any, lora: str, offline: bool) -> None:
    """The few-step preset: LCM scheduler plus a fused LCM-LoRA (4-8 steps, guidance ~1).

    The LoRA (a folder, a ``.safetensors`` file or a hub id; safetensors only) is fused into
    the UNet's weights, and its adapter layers are then removed, so inference costs the same as
    without it. Loading it needs ``peft`` (a dependency).
    """
    from diffusers import LCMScheduler

    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    path = Path(lora).expanduser()
    source = str(path) if path.exists() else lora
    try:
        pipe.load_lora_weights(source, local_files_only=offline, use_safetensors=True)
        pipe.fuse_lora()
        pipe.unload_lora_weights()  # the fused weights stay; the adapter layers go
    except InpaintAugError:
        raise
    except Exception as err:  # every library failure becomes one line
        raise load_error("LCM-LoRA", lora, err) from None


def quiet_libraries() -> None:
    """Silence library chatter (warnings, loading bars) that would drown the run's own log."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", module="diffusers")
    warnings.filterwarnings("ignore", module="transformers")
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    dlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()


def load_pipeline(model: str, dtype: Any, offline: bool) -> Any:
    """Load a real pipeline (checked by :func:`~inpaint_aug.pipeline.hub.check_model` first).

    Safetensors only, never remote code, safety checker off; with ``offline``, from the local
    cache only. A FLUX model is loaded as ``FluxFillPipeline`` (the auto pipeline would make a
    FLUX.1 Fill checkpoint a plain ``FluxInpaintPipeline``). Every failure is one line naming
    the model and what to do.
    """
    from diffusers import (
        AutoPipelineForInpainting,
        FluxFillPipeline,
        StableDiffusionInpaintPipeline,
    )

    path = Path(model).expanduser()
    common = {"torch_dtype": dtype, "safety_checker": None, "requires_safety_checker": False}
    common["local_files_only"] = offline
    try:
        if path.is_file():
            return StableDiffusionInpaintPipeline.from_single_file(str(path), **common)
        source = str(path) if path.is_dir() else model
        if model_family(model) is ModelFamily.flux:
            flux = {"torch_dtype": dtype, "local_files_only": offline, "use_safetensors": True}
            return FluxFillPipeline.from_pretrained(source, **flux)
        return AutoPipelineForInpainting.from_pretrained(source, use_safetensors=True, **common)
    except InpaintAugError:
        raise
    except Exception as err:  # every library failure becomes one line
        raise load_error("model", model, err) from None

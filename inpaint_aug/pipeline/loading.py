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

from inpaint_aug.errors import InpaintAugError, ModelError
from inpaint_aug.pipeline.hub import check_lora, load_error


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
    cache only. Every failure is one line naming the model and what to do.
    """
    from diffusers import AutoPipelineForInpainting, StableDiffusionInpaintPipeline

    path = Path(model).expanduser()
    common = {"torch_dtype": dtype, "safety_checker": None, "requires_safety_checker": False}
    common["local_files_only"] = offline
    try:
        if path.is_file():
            return StableDiffusionInpaintPipeline.from_single_file(str(path), **common)
        source = str(path) if path.is_dir() else model
        return AutoPipelineForInpainting.from_pretrained(source, use_safetensors=True, **common)
    except InpaintAugError:
        raise
    except Exception as err:  # every library failure becomes one line
        raise load_error("model", model, err) from None

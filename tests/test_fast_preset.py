"""The few-step preset: LCM scheduler plus a LoRA fused into the UNet, offline with a tiny LoRA."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inpaint_aug.cli import app
from inpaint_aug.errors import ModelError
from inpaint_aug.options import ModelOptions
from inpaint_aug.pipeline.backend import DiffusersInpainter, InpaintRequest


@pytest.fixture(scope="module")
def tiny_lora(tmp_path_factory) -> Path:
    """A random LoRA for the tiny UNet, saved in the diffusers LoRA format."""
    from inpaint_aug.pipeline.tiny import save_tiny_lora

    return save_tiny_lora(tmp_path_factory.mktemp("lora") / "tiny-lora")


@pytest.fixture(scope="module")
def fast_inpainter(tiny_lora):
    import torch

    torch.set_num_threads(1)
    return DiffusersInpainter.load(ModelOptions("tiny-random", device="cpu", lcm_lora=tiny_lora))


def _batch() -> list[InpaintRequest]:
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return [InpaintRequest(pixels, mask, "a red ball", "blurry", 7, 4, 1.0, 0.9)]


def test_lora_is_fused_with_the_lcm_scheduler(fast_inpainter):
    from diffusers import LCMScheduler

    from inpaint_aug.pipeline.tiny import build_tiny_pipeline

    pipe = fast_inpainter.pipe
    assert isinstance(pipe.scheduler, LCMScheduler)
    assert not any("lora" in name for name, _ in pipe.unet.named_parameters())  # fused, unloaded
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny scheduler config's steps_offset notice
        plain = build_tiny_pipeline()  # the same base weights, without the LoRA
    plain.scheduler = LCMScheduler.from_config(plain.scheduler.config)
    q = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert not np.allclose(pipe.unet.state_dict()[q], plain.unet.state_dict()[q])

    first = fast_inpainter.inpaint(_batch())
    assert np.array_equal(first[0], fast_inpainter.inpaint(_batch())[0])  # deterministic
    without = DiffusersInpainter(plain, "tiny-random", "cpu").inpaint(_batch())
    assert first[0].shape == without[0].shape == (64, 64, 3)
    assert not np.array_equal(first[0], without[0])  # the LoRA changes the output


def test_missing_lora_folder_is_one_line(tmp_path, monkeypatch):
    import inpaint_aug.pipeline.backend as backend

    monkeypatch.setattr(backend, "pick_device", lambda *_: pytest.fail("checked too late"))
    missing = tmp_path / "no-such-lora"
    with pytest.raises(ModelError) as err:
        DiffusersInpainter.load(ModelOptions("tiny-random", device="cpu", lcm_lora=str(missing)))
    assert str(missing) in str(err.value) and "\n" not in str(err.value)
    assert "no such file or folder" in str(err.value)


def test_uncached_hub_lora_fails_fast_offline(monkeypatch):
    import inpaint_aug.pipeline.backend as backend

    monkeypatch.setattr(backend, "pick_device", lambda *_: pytest.fail("checked too late"))
    with pytest.raises(ModelError) as err:
        DiffusersInpainter.load(ModelOptions("tiny-random", lcm_lora="nobody/no-such-lora"))
    message = str(err.value)
    assert "'nobody/no-such-lora'" in message and "not in the local Hugging Face cache" in message
    assert "--lcm-lora DIR" in message and "\n" not in message


def test_cli_fast_preset_with_a_local_lora(shapes, prompts_file, tmp_path, tiny_lora):
    out = tmp_path / "out"
    args = ["run", str(shapes), "--prompts", str(prompts_file), "--model", "tiny-random"]
    args += ["--preset", "fast", "--lcm-lora", str(tiny_lora), "--resolution", "64"]
    args += ["--out", str(out), "--verify", "off"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr
    settings = json.loads((out / "run.json").read_text(encoding="utf-8"))["settings"]
    assert settings["preset"] == "fast" and settings["lcm_lora"] == str(tiny_lora)
    assert settings["plan"]["steps"] == 4 and settings["plan"]["guidance"] == 1.0


def test_cli_missing_lora_folder_is_one_error_line(shapes, prompts_file, tmp_path):
    out, missing = tmp_path / "out", tmp_path / "no-such-lora"
    args = ["run", str(shapes), "--prompts", str(prompts_file), "--model", "tiny-random"]
    args += ["--preset", "fast", "--lcm-lora", str(missing), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.stdout + result.stderr
    assert lines[0].startswith("error:") and str(missing) in lines[0]
    assert not out.exists()

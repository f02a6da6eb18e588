"""Shape control with SDXL: the family's default ControlNet, the fit check, the tiny SDXL run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from family_checks import check_control, check_labels_and_pixels, run_cli
from typer.testing import CliRunner

from inpaint_aug.choices import ModelFamily
from inpaint_aug.cli import app
from inpaint_aug.errors import ModelError
from inpaint_aug.model_family import controlnet_misfit
from inpaint_aug.options import (
    DEFAULT_CONTROLNET,
    DEFAULT_CONTROLNET_SDXL,
    ModelOptions,
    PlanSettings,
    RunOptions,
)
from inpaint_aug.pipeline.backend import InpaintRequest
from inpaint_aug.pipeline.control import edge_map
from inpaint_aug.pipeline.loading import check_controlnet

SDXL_CN = "StableDiffusionXLControlNetInpaintPipeline"
# The fields that tell the public canny ControlNets apart (their config.json files).
SD15_NET = {"cross_attention_dim": 768, "addition_embed_type": None}
SDXL_NET = {"cross_attention_dim": 2048, "addition_embed_type": "text_time"}
SDXL_UNET = {"cross_attention_dim": 2048, "addition_embed_type": "text_time", "in_channels": 9}


def _index(root: Path, class_name: str) -> str:
    root.mkdir(parents=True)
    (root / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    return str(root)


def test_the_default_controlnet_follows_the_family(tmp_path):
    sdxl = _index(tmp_path / "sdxl", "StableDiffusionXLInpaintPipeline")
    canny = PlanSettings(control="canny")
    assert RunOptions("a.json", "p.yaml", plan=canny).plan.controlnet == DEFAULT_CONTROLNET
    on = RunOptions("a.json", "p.yaml", model=sdxl, plan=canny)
    assert on.plan.controlnet == DEFAULT_CONTROLNET_SDXL == on.model_options().controlnet
    assert RunOptions.from_dict(on.to_dict()).plan.controlnet == DEFAULT_CONTROLNET_SDXL
    given = PlanSettings(control="canny", controlnet="me/my-sdxl-canny")
    assert RunOptions("a.json", "p.yaml", model=sdxl, plan=given).plan.controlnet == (
        "me/my-sdxl-canny"
    )
    off = RunOptions("a.json", "p.yaml", model=sdxl)  # no control: the recorded plan as before
    assert off.plan.controlnet == DEFAULT_CONTROLNET and off.model_options().controlnet is None


@pytest.mark.parametrize(
    ("net", "family", "unet", "fits"),
    [
        (SD15_NET, ModelFamily.sd, None, True),
        (SDXL_NET, ModelFamily.sdxl, None, True),
        (SDXL_NET, ModelFamily.sdxl, SDXL_UNET, True),
        (SD15_NET, ModelFamily.sdxl, None, False),
        (SD15_NET, ModelFamily.sdxl, SDXL_UNET, False),
        (SDXL_NET, ModelFamily.sd, None, False),
        ({**SD15_NET, "cross_attention_dim": 1024}, ModelFamily.sd, SD15_NET, False),  # SD 2
        ({**SDXL_NET, "cross_attention_dim": 64}, ModelFamily.sdxl, SDXL_UNET, False),
    ],
)
def test_a_controlnet_must_fit_the_model(net, family, unet, fits):
    why = controlnet_misfit(net, family, unet)
    assert (why is None) is fits
    if not fits:
        assert "\n" not in why and "--controlnet" in why


def test_sd15_controlnet_with_sdxl_is_refused_from_the_configs(
    tiny_sdxl_dir, tiny_controlnet_dir, tiny_sdxl_controlnet_dir
):
    with pytest.raises(ModelError) as err:
        check_controlnet(str(tiny_controlnet_dir), str(tiny_sdxl_dir))
    message = str(err.value)
    assert message.startswith(f"ControlNet {tiny_controlnet_dir}: an SD 1.5-style ControlNet")
    assert "does not fit the SDXL model (cross_attention_dim 64)" in message
    assert DEFAULT_CONTROLNET_SDXL in message and "\n" not in message
    with pytest.raises(ModelError, match=r"an SDXL ControlNet .* does not fit the SD 1\.5 model"):
        check_controlnet(str(tiny_sdxl_controlnet_dir), "tiny-random")
    assert check_controlnet(str(tiny_sdxl_controlnet_dir), str(tiny_sdxl_dir)) is False


def test_cli_refuses_a_mismatched_controlnet_before_anything_is_written(
    shapes, prompts_file, tmp_path, tiny_sdxl_dir, tiny_controlnet_dir
):
    out = tmp_path / "out"
    args = ["run", str(shapes), "--prompts", str(prompts_file), "--out", str(out)]
    args += ["--model", str(tiny_sdxl_dir), "--control", "canny"]
    result = CliRunner().invoke(app, [*args, "--controlnet", str(tiny_controlnet_dir)])
    assert result.exit_code == 1 and not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not fit the SDXL model" in lines[0]
    assert "Traceback" not in result.output


def _requests(scale: float | None, strength: float) -> list[InpaintRequest]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pixels[:, 16:] = 250  # a strong edge through the region
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    edges = edge_map(pixels) if scale is not None else None
    request = InpaintRequest(pixels, mask, "a ball", "blurry", 3, 2, 5.0, strength, edges)
    return [replace(request, control_scale=scale or 0.0, seed=seed) for seed in (3, 4)]


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_sdxl_controlnet_pipeline_is_the_model_plus_the_control(
    tiny_sdxl_dir, tiny_sdxl_controlnet_dir, strength
):
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    opts = ModelOptions(str(tiny_sdxl_dir), device="cpu", controlnet=str(tiny_sdxl_controlnet_dir))
    inpainter = DiffusersInpainter.load(opts)
    pipe = inpainter.pipe
    assert type(pipe).__name__ == SDXL_CN
    assert pipe.config.requires_aesthetics_score is False and pipe.watermark is None
    # diffusers' own per-item encode (with its fp32 upcast), not the batched one
    assert getattr(pipe._encode_vae_image, "__func__", None) is type(pipe)._encode_vae_image
    plain = DiffusersInpainter.load(ModelOptions(str(tiny_sdxl_dir), device="cpu"))
    without = plain.inpaint(_requests(None, strength))
    at_zero = inpainter.inpaint(_requests(0.0, strength))
    controlled = inpainter.inpaint(_requests(0.8, strength))
    assert all(np.array_equal(a, b) for a, b in zip(without, at_zero, strict=True))
    assert all(not np.array_equal(a, b) for a, b in zip(at_zero, controlled, strict=True))


def test_sdxl_controlnet_run_keeps_labels_pixels_and_changes_the_redraw(
    shapes, prompts_file, tmp_path, tiny_sdxl_dir, tiny_sdxl_controlnet_dir
):
    model = ["--model", str(tiny_sdxl_dir), "--batch-size", "2"]
    control = ["--control", "canny", "--controlnet", str(tiny_sdxl_controlnet_dir)]
    a = run_cli(shapes, prompts_file, tmp_path / "a", *model, *control, "--control-scale", "0.8")
    check_labels_and_pixels(shapes, tmp_path / "a", a)
    check_control(a, tiny_sdxl_controlnet_dir, 0.8)
    plan = json.loads((tmp_path / "a" / "run.json").read_text())["settings"]["plan"]
    assert (plan["control"], plan["controlnet"]) == ("canny", str(tiny_sdxl_controlnet_dir))
    plain = run_cli(shapes, prompts_file, tmp_path / "plain", *model)
    assert all("control" not in e for im in plain["images"] for e in im["inpaint_aug"]["edits"])
    names = [im["file_name"] for im in a["images"]]
    assert names == [im["file_name"] for im in plain["images"]]
    assert any(
        (tmp_path / "a" / n).read_bytes() != (tmp_path / "plain" / n).read_bytes() for n in names
    )

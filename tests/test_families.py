"""Model families: SDXL inpainting and FLUX.1 Fill through the same inpainter, tiny and offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from family_checks import check_labels_and_pixels, run_cli
from typer.testing import CliRunner

import inpaint_aug.model_family as mf
from inpaint_aug.choices import ModelFamily
from inpaint_aug.cli import app
from inpaint_aug.errors import OptionsError
from inpaint_aug.model_family import family_of_class, model_family
from inpaint_aug.options import PlanSettings, RunOptions
from inpaint_aug.pipeline.backend import InpaintRequest

SDXL_CLASS = "StableDiffusionXLInpaintPipeline"


def model_folder(root: Path, class_name: str | None) -> Path:
    """A folder holding only a ``model_index.json`` (enough to read the family)."""
    root.mkdir(parents=True, exist_ok=True)
    if class_name is not None:
        (root / "model_index.json").write_text(json.dumps({"_class_name": class_name}))
    return root


@pytest.mark.parametrize(
    ("class_name", "family"),
    [
        ("StableDiffusionInpaintPipeline", ModelFamily.sd),
        ("StableDiffusionPipeline", ModelFamily.sd),
        (SDXL_CLASS, ModelFamily.sdxl),
        ("StableDiffusionXLPipeline", ModelFamily.sdxl),
        ("FluxFillPipeline", ModelFamily.flux),
        ("KandinskyV22InpaintPipeline", ModelFamily.sd),  # anything else: driven as before
        (None, ModelFamily.sd),
    ],
)
def test_family_from_the_class_name(tmp_path, class_name, family):
    assert family_of_class(class_name) is family
    assert model_family(str(model_folder(tmp_path / "m", class_name))) is family


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("tiny-random", ModelFamily.sd),
        ("stable-diffusion-v1-5/stable-diffusion-inpainting", ModelFamily.sd),
        ("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", ModelFamily.sdxl),
        ("black-forest-labs/FLUX.1-Fill-dev", ModelFamily.flux),
    ],
)
def test_family_of_an_uncached_hub_id_follows_its_name(monkeypatch, model, family):
    monkeypatch.setattr(mf, "_cached_index", lambda repo: None)
    assert model_family(model) is family


def test_family_of_a_cached_hub_id_is_read_from_its_index(monkeypatch, tmp_path):
    index = model_folder(tmp_path / "snap", "FluxFillPipeline") / "model_index.json"
    monkeypatch.setattr(mf, "_cached_index", lambda repo: index)
    assert model_family("someone/plain-name") is ModelFamily.flux


def test_resolution_follows_the_model_unless_given(tmp_path):
    sdxl = str(model_folder(tmp_path / "sdxl", SDXL_CLASS))
    flux = str(model_folder(tmp_path / "flux", "FluxFillPipeline"))
    assert RunOptions("a.json", "p.yaml").plan.resolution == 512
    assert RunOptions("a.json", "p.yaml", model="tiny-random").plan.resolution == 512
    assert RunOptions("a.json", "p.yaml", model=sdxl).plan.resolution == 1024
    assert RunOptions("a.json", "p.yaml", model=flux).plan.resolution == 1024
    given = RunOptions("a.json", "p.yaml", model=sdxl, plan=PlanSettings(resolution=768))
    assert given.plan.resolution == 768
    again = RunOptions.from_dict(given.to_dict())  # run.json holds the value used
    assert given.to_dict()["plan"]["resolution"] == 768 == again.plan.resolution
    assert PlanSettings().resolution is None


def test_fast_preset_follows_the_family(tmp_path):
    sdxl = str(model_folder(tmp_path / "sdxl", SDXL_CLASS))
    flux = str(model_folder(tmp_path / "flux", "FluxFillPipeline"))
    assert RunOptions("a.json", "p.yaml", model=sdxl, preset="fast").lcm_lora == mf.LCM_LORA_SDXL
    with pytest.raises(OptionsError, match="no LCM-LoRA for FLUX"):
        RunOptions("a.json", "p.yaml", model=flux, preset="fast")


@pytest.fixture(scope="module")
def tiny_flux_dir(tmp_path_factory) -> Path:
    from inpaint_aug.pipeline.tiny_families import build_tiny_flux_fill

    path = tmp_path_factory.mktemp("flux") / "tiny-flux-fill"
    build_tiny_flux_fill().save_pretrained(str(path))
    return path


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_family_runs_through_model_dir(
    request, shapes, prompts_file, tmp_path, tiny_sdxl_dir, tiny_flux_dir, family
):
    folder = {"sdxl": tiny_sdxl_dir, "flux": tiny_flux_dir}[family]
    out = tmp_path / "out"
    data = run_cli(shapes, prompts_file, out, "--model", str(folder), "--batch-size", "2")
    check_labels_and_pixels(shapes, out, data)
    assert all(im["inpaint_aug"]["model"] == str(folder) for im in data["images"])
    negatives = {e["negative_prompt"] for im in data["images"] for e in im["inpaint_aug"]["edits"]}
    assert negatives == ({None} if family == "flux" else {"blurry"})  # FLUX Fill has none
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["model"] == str(folder) and settings["plan"]["resolution"] == 64


def _requests(prompts: list[str]) -> list[InpaintRequest]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    return [InpaintRequest(pixels, mask, p, "blurry", 3, 2, 5.0, 1.0) for p in prompts]


@pytest.mark.parametrize(("family", "parts"), [("sdxl", 4), ("flux", 2)])
def test_prompt_embeddings_are_cached_per_prompt(tiny_sdxl_dir, tiny_flux_dir, family, parts):
    from inpaint_aug.options import ModelOptions
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    folder = {"sdxl": tiny_sdxl_dir, "flux": tiny_flux_dir}[family]
    inpainter = DiffusersInpainter.load(ModelOptions(str(folder), device="cpu"))
    assert type(inpainter.pipe).__name__ == {"sdxl": SDXL_CLASS, "flux": "FluxFillPipeline"}[family]
    first = inpainter.inpaint(_requests(["a red ball", "a red ball", "a cube"]))
    cache = inpainter._prompts._cache
    assert len(cache) == 2 and all(len(v) == parts for v in cache.values())
    again = inpainter.inpaint(_requests(["a red ball", "a red ball", "a cube"]))
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert first[0].shape == (32, 32, 3)


def test_cli_refuses_control_with_flux(shapes, prompts_file, tmp_path):
    flux = model_folder(tmp_path / "flux", "FluxFillPipeline")
    args = ["run", str(shapes), "--prompts", str(prompts_file), "--model", str(flux)]
    result = CliRunner().invoke(app, [*args, "--control", "canny", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    message = result.stderr.strip()
    assert "shape control needs an SD 1.5 or SDXL inpainting model" in message
    assert "FLUX.1 Fill has no ControlNet inpainting pipeline" in message and "\n" not in message


def test_vae_slicing_loads_for_every_family(tiny_sdxl_dir, tiny_flux_dir):
    from inpaint_aug.options import ModelOptions
    from inpaint_aug.pipeline.backend import DiffusersInpainter

    for model in ("tiny-random", str(tiny_sdxl_dir), str(tiny_flux_dir)):
        inpainter = DiffusersInpainter.load(ModelOptions(model, device="cpu", vae_slicing=True))
        assert inpainter.pipe.vae.use_slicing

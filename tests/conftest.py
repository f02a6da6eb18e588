"""Shared fixtures. No test touches the network: the hub is switched off before anything loads."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# One intra-op thread for the tiny model: the engine's own threads use the other core, and on a
# loaded machine (parallel jobs) OpenMP spin-waits make more threads many times slower. Set
# before torch loads, so it holds wherever a test builds a model (torch reads it when it is first
# imported, by a fixture or by the engine); conftest itself never imports torch, so the tests
# that need no model run without it.
os.environ["OMP_NUM_THREADS"] = "1"

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "datasets" / "shapes"


@pytest.fixture(scope="session")
def tiny_inpainter():
    """The tiny random-weight model, built once per test session."""
    import torch

    from inpaint_aug.pipeline.backend import DiffusersInpainter

    torch.set_num_threads(1)  # also when torch was loaded before this file set OMP_NUM_THREADS
    return DiffusersInpainter.load("tiny-random", device="cpu")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_inpainter) -> Path:
    """The tiny model saved with save_pretrained, to test the real loading path."""
    path = tmp_path_factory.mktemp("model") / "tiny-inpaint"
    tiny_inpainter.pipe.save_pretrained(str(path))
    return path


@pytest.fixture()
def shapes(tmp_path) -> Path:
    """A fresh synthetic dataset (PNG) in a temporary folder; returns its annotations.json."""
    from inpaint_aug.demo.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path / "data", n_images=4, size=(160, 120), seed=3)


@pytest.fixture()
def prompts_file(tmp_path) -> Path:
    """A prompt book covering the synthetic classes."""
    path = tmp_path / "prompts.yaml"
    path.write_text(
        "vars:\n  light: [daylight, dusk]\n"
        "default:\n  prompt: 'a photo of a {name}, {light}'\n  negative: blurry\n"
        "classes:\n  circle:\n    prompt: ['a {color} ball', 'a {color} sphere, {light}']\n"
        "    vars: {color: [red, blue]}\n    strength: 0.9\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A tiny random CLIP saved with save_pretrained: the verifier's real loading path."""
    from inpaint_aug.pipeline.tiny import build_tiny_clip

    path = tmp_path_factory.mktemp("verifier") / "tiny-clip"
    model, tokenizer = build_tiny_clip()
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_verifier():
    """The tiny random CLIP verifier, as ``--verify auto`` loads it with ``tiny-random``."""
    from inpaint_aug.pipeline.verifier_loading import load_verifier

    return load_verifier("tiny-clip", None, "cpu", "fp32", None)


@pytest.fixture(scope="session")
def tiny_sdxl_dir(tmp_path_factory) -> Path:
    """The tiny random SDXL inpainting pipeline saved with save_pretrained (``--model DIR``)."""
    from inpaint_aug.pipeline.tiny_families import build_tiny_sdxl

    path = tmp_path_factory.mktemp("sdxl") / "tiny-sdxl"
    build_tiny_sdxl().save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_controlnet_dir(tmp_path_factory) -> Path:
    """The tiny random SD 1.5 ControlNet saved with save_pretrained (``--controlnet DIR``)."""
    from inpaint_aug.pipeline.tiny_families import build_tiny_controlnet

    path = tmp_path_factory.mktemp("controlnet") / "tiny-controlnet"
    build_tiny_controlnet().save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_sdxl_controlnet_dir(tmp_path_factory) -> Path:
    """The tiny random SDXL ControlNet saved with save_pretrained (``--controlnet DIR``)."""
    from inpaint_aug.pipeline.tiny_families import build_tiny_sdxl_controlnet

    path = tmp_path_factory.mktemp("controlnet") / "tiny-sdxl-controlnet"
    build_tiny_sdxl_controlnet().save_pretrained(str(path))
    return path

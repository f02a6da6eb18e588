"""Loading a verifier: a hub id or a local folder of CLIP or OWLv2, or a tiny random one.

Folders are checked before anything loads (config, safetensors weights, tokenizer), an uncached
hub id fails at once when the hub is off, and every failure is one line.

Example:
    >>> verifier = load_verifier("tiny-clip", None, "cpu", "fp32", None)  # doctest: +SKIP
    >>> verifier.name  # doctest: +SKIP
    'tiny-clip'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inpaint_aug.choices import Dtype
from inpaint_aug.errors import ModelError
from inpaint_aug.pipeline.backend import _torch_dtype, pick_device
from inpaint_aug.pipeline.hub import local_files_only
from inpaint_aug.pipeline.loading import quiet_libraries
from inpaint_aug.pipeline.verifiers import ClipVerifier, Owlv2Verifier

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_OWLV2 = "google/owlv2-base-patch16-ensemble"
VERIFY_FIX = "pass a local folder with --verifier-model DIR, or --verify off"
# A tiny random verifier's scores are noise: by default its bar lets every redraw through, so
# the offline quick start runs the whole verification path without random rejections.
TINY_THRESHOLDS = {"clip": 200.0, "owlv2": 0.0}
KINDS = {"clip": "clip", "owlv2": "owlv2", "tiny-clip": "clip", "tiny-owlv2": "owlv2"}


def load_verifier(
    kind: str, model_id_or_dir: str | None, device: str, dtype: Any, threshold: float | None
) -> Any:
    """Load a verifier: ``clip`` or ``owlv2`` (a hub id or a local folder), or a tiny one.

    Args:
        kind: ``clip``, ``owlv2``, or ``tiny-clip``/``tiny-owlv2`` (random weights built in
            memory, for tests and the offline quick start; ``model_id_or_dir`` is ignored).
        model_id_or_dir: a hub id or a folder saved with ``save_pretrained`` (model and
            tokenizer, optionally ``preprocessor_config.json``); ``None``: the kind's default.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        dtype: a :class:`~inpaint_aug.choices.Dtype`, its name or ``None`` (``auto``: fp16 on a
            GPU, fp32 on the CPU), or a torch dtype.
        threshold: the pass bar in the verifier's units (``None``: its default).

    Raises:
        ModelError: the model cannot be found or loaded; the one-line message says what to do.
    """
    family = KINDS.get(str(kind))
    if family is None:
        raise ModelError(f"verifier {kind!r}: expected one of {', '.join(KINDS)}")
    dev = pick_device(device)
    if dtype is None or isinstance(dtype, (str, Dtype)):
        dtype = _torch_dtype(Dtype.parse("--dtype", dtype or "auto"), dev)
    quiet_libraries()
    source = model_id_or_dir or (DEFAULT_CLIP if family == "clip" else DEFAULT_OWLV2)
    if kind != family:
        from inpaint_aug.pipeline.tiny import build_tiny_clip, build_tiny_owlv2

        model, tokenizer = (build_tiny_clip if family == "clip" else build_tiny_owlv2)()
        model, norm, name = model.to(dtype=dtype), {}, kind
        threshold = TINY_THRESHOLDS[family] if threshold is None else threshold
    else:
        model, tokenizer, norm = _load_pretrained(family, _checked(family, source), dtype)
        name = f"{family}:{source}"
    cls = ClipVerifier if family == "clip" else Owlv2Verifier
    verifier = cls(model, tokenizer, dev, **({} if threshold is None else {"threshold": threshold}))
    verifier.name = name
    verifier.mean = tuple(norm.get("image_mean", verifier.mean))
    verifier.std = tuple(norm.get("image_std", verifier.std))
    return verifier


def _checked(family: str, source: str) -> str:
    """``source`` when it can hold a model of ``family``; else a ModelError naming it."""
    path, title = Path(source).expanduser(), {"clip": "CLIP", "owlv2": "OWLv2"}[family]
    if path.is_dir():
        try:
            found = json.loads((path / "config.json").read_text(encoding="utf-8"))["model_type"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ModelError(f"{path}: not a {title} model folder (no config.json)") from None
        if found != family:
            raise ModelError(f"{path}: a {found!r} model folder; expected a {title} one")
        if not any(path.glob("*.safetensors")):
            raise ModelError(f"{path}: no .safetensors weights (only safetensors are loaded)")
        if not any((path / f).is_file() for f in ("tokenizer.json", "vocab.json")):
            raise ModelError(f"{path}: no tokenizer (save it there too, with save_pretrained)")
        return str(path)
    if path.exists() or source.count("/") != 1 or source.startswith((".", "/", "~")):
        raise ModelError(f"{source}: no such {title} model folder, and not a hub id 'org/name'")
    local_files_only(source, "verifier", VERIFY_FIX)  # not cached and no hub: fail at once
    return source


def _load_pretrained(family: str, source: str, dtype: Any) -> tuple[Any, Any, dict[str, Any]]:
    """Model, tokenizer and ``preprocessor_config.json`` (or ``{}``); safetensors only."""
    from transformers import AutoTokenizer, CLIPModel, Owlv2ForObjectDetection
    from transformers.utils import cached_file, logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    cls = CLIPModel if family == "clip" else Owlv2ForObjectDetection
    quiet = ("_raise_exceptions_for_missing_entries", "_raise_exceptions_for_connection_errors")
    try:
        model = cls.from_pretrained(source, dtype=dtype, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(source)
        found = cached_file(source, "preprocessor_config.json", **dict.fromkeys(quiet, False))
        config = json.loads(Path(found).read_text(encoding="utf-8")) if found else {}
    except OSError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fix = "pass a local folder with --verifier-model DIR or --verify off"
        raise ModelError(f"cannot load verifier {source!r} ({first}); offline? {fix}") from None
    except (ValueError, TypeError, KeyError, RuntimeError) as err:
        raise ModelError(f"cannot load verifier {source!r}: {err}".splitlines()[0]) from None
    return model, tokenizer, config

"""The torch verifiers, :class:`ClipVerifier` and :class:`Owlv2Verifier`.

:mod:`inpaint_aug.pipeline.verifier_loading` builds them from a hub id, a folder or a tiny config.

Both are calibrated against the source object: their thresholds are relative to its score.
torch and transformers are imported inside the functions: importing this module is cheap.

Example:
    >>> verifier = ClipVerifier(model, tokenizer, "cpu")  # doctest: +SKIP
    >>> verifier.verify([request])[0].passed  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from inpaint_aug.pipeline.verify import Verdict, VerifyRequest, box_crop

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class _TorchVerifier:
    """What both verifiers share: the model on its device, the text cache, the pixel pipeline.

    A subclass defines ``_text_features`` (its text tower), ``_scores`` (``(2B,)`` scores of a
    batch: the results', then the sources') and ``_verdict`` (its calibrated pass rule).

    Args:
        model: a transformers ``CLIPModel`` or ``Owlv2ForObjectDetection``.
        processor: its processor, a bare tokenizer, or ``None`` (the tokenizer is then loaded
            from where the model was loaded from).
        device: where the model runs (it is moved there).

    Attributes:
        name: recorded in provenance (default: the kind and the model's hub id or folder).
        template: the text for a label, ``{label}`` filled in.
        mean: normalisation mean per channel (the processor's, else OpenAI's); ``std`` too.
        seconds: time spent in :meth:`verify` so far.
    """

    kind = ""
    template = "{label}"

    def __init__(self, model: Any, processor: Any, device: str) -> None:
        if processor is None:
            from transformers import AutoTokenizer

            processor = AutoTokenizer.from_pretrained(model.config.name_or_path)
        self.tokenizer = getattr(processor, "tokenizer", processor)
        images = getattr(processor, "image_processor", None)
        self.mean = tuple(getattr(images, "image_mean", OPENAI_MEAN))
        self.std = tuple(getattr(images, "image_std", OPENAI_STD))
        self.model = model.to(device).eval()
        self.device = device
        self.dtype = next(model.parameters()).dtype
        self.size = int(model.config.vision_config.image_size)
        self.name = f"{self.kind}:{model.config.name_or_path or 'custom'}"
        self.seconds = 0.0
        self._texts: dict[str, Any] = {}

    def verify(self, batch: Sequence[VerifyRequest]) -> list[Verdict]:
        """One verdict per request, in order; one batched image forward for the whole batch."""
        import torch

        if not batch:
            return []
        start = time.perf_counter()
        with torch.inference_mode():
            scores = self._scores(list(batch)).tolist()
        n = len(batch)
        verdicts = [self._verdict(s, src) for s, src in zip(scores[:n], scores[n:], strict=True)]
        self.seconds += time.perf_counter() - start
        return verdicts

    def _text(self, labels: Sequence[str]) -> Any:
        """``(len(labels), D)`` float32 text embeddings; each distinct label is embedded once."""
        import torch

        new = sorted({lab for lab in labels if lab not in self._texts})
        if new:
            limit = int(self.model.config.text_config.max_position_embeddings)
            texts = [self.template.format(label=lab) for lab in new]
            options = {"padding": True, "truncation": True, "max_length": limit}
            tokens = self.tokenizer(texts, return_tensors="pt", **options).to(self.device)
            out = self._text_features(tokens["input_ids"], tokens["attention_mask"])
            self._texts.update(zip(new, getattr(out, "pooler_output", out).float(), strict=True))
        return torch.stack([self._texts[lab] for lab in labels])

    def _pixels(self, crops: Sequence[np.ndarray], centre: bool) -> Any:
        """Crops as one normalised ``(N, 3, S, S)`` batch at the model's size, in its dtype.

        Each is scaled (bicubic, antialiased) to a longer side of ``S`` on a mean-colour square
        (centred, or top-left like OWLv2's padding): no part is cut off, the shape is kept.
        """
        import torch
        from torch.nn.functional import interpolate

        size = self.size
        mean = torch.tensor(self.mean, device=self.device).view(3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(3, 1, 1)
        out = mean.repeat(len(crops), 1, size, size)  # a mean-colour canvas per crop
        for i, crop in enumerate(crops):
            h, w = crop.shape[:2]
            hh, ww = max(1, round(h * size / max(h, w))), max(1, round(w * size / max(h, w)))
            img = torch.from_numpy(np.ascontiguousarray(crop)).to(self.device)
            img = img.permute(2, 0, 1)[None].float() / 255.0
            img = interpolate(img, (hh, ww), mode="bicubic", antialias=True, align_corners=False)
            y0, x0 = ((size - hh) // 2, (size - ww) // 2) if centre else (0, 0)
            out[i, :, y0 : y0 + hh, x0 : x0 + ww] = img[0].clamp(0.0, 1.0)
        return ((out - mean) / std).to(self.dtype)


class ClipVerifier(_TorchVerifier):
    """CLIP similarity of the object's box crop to ``"a photo of a {label}"``.

    ``score`` and ``source_score`` are ``100 * cosine`` (CLIP score points; real photos of the
    right class score about 25-35). A redraw passes when ``score >= source_score - threshold``,
    at most ``threshold`` points below the source object; that bar is ``Verdict.threshold``.

    Args:
        model: a ``CLIPModel``.
        processor: a ``CLIPProcessor``, a bare tokenizer, or ``None``.
        device: where the model runs.
        threshold: the allowed drop, in CLIP score points.
    """

    kind = "clip"
    template = "a photo of a {label}"

    def __init__(self, model: Any, processor: Any, device: str, threshold: float = 2.5) -> None:
        super().__init__(model, processor, device)
        self.threshold = float(threshold)

    def _text_features(self, input_ids: Any, attention_mask: Any) -> Any:
        return self.model.get_text_features(input_ids, attention_mask)

    def _scores(self, batch: list[VerifyRequest]) -> Any:
        from torch.nn.functional import cosine_similarity

        crops = [box_crop(r.result, r.box) for r in batch]
        crops += [box_crop(r.source, r.box) for r in batch]
        out = self.model.get_image_features(pixel_values=self._pixels(crops, centre=True))
        images = getattr(out, "pooler_output", out).float()
        return 100.0 * cosine_similarity(images, self._text([r.label for r in batch] * 2))

    def _verdict(self, score: float, source: float) -> Verdict:
        bar = source - self.threshold
        return Verdict(score, source, bar, score >= bar)


class Owlv2Verifier(_TorchVerifier):
    """OWLv2 detection of the label on the object's box, in the whole crop.

    ``score``: the best sigmoid class score for the label (as text query) among predicted boxes
    with IoU >= ``iou`` against the object's box, 0.0 if none; ``source_score`` likewise on the
    source. A redraw passes when ``score >= threshold * source_score`` (it keeps that fraction of
    the source's score). With ``source_score`` 0 the detector cannot see the class on this
    object at all and cannot judge, so the verdict passes (bar 0.0).

    Args:
        model: an ``Owlv2ForObjectDetection``.
        processor: an ``Owlv2Processor``, a bare tokenizer, or ``None``.
        device: where the model runs.
        threshold: the fraction of the source's score a redraw must keep.
        iou: the overlap a predicted box needs with the object's box to count.
    """

    kind = "owlv2"

    def __init__(
        self, model: Any, processor: Any, device: str, threshold: float = 0.5, iou: float = 0.5
    ) -> None:
        super().__init__(model, processor, device)
        self.threshold = float(threshold)
        self.iou = float(iou)

    def _text_features(self, input_ids: Any, attention_mask: Any) -> Any:
        return self.model.owlv2.get_text_features(input_ids, attention_mask)

    def _scores(self, batch: list[VerifyRequest]) -> Any:
        import torch

        crops = [r.result for r in batch] + [r.source for r in batch]
        fmap, _ = self.model.image_embedder(pixel_values=self._pixels(crops, centre=False))
        feats = fmap.reshape(fmap.shape[0], -1, fmap.shape[-1])
        queries = self._text([r.label for r in batch] * 2)[:, None].to(feats.dtype)
        probs = self.model.class_predictor(feats, queries, None)[0][..., 0].float().sigmoid()
        boxes = self.model.box_predictor(feats, fmap).float()
        sides = [max(c.shape[:2]) for c in crops]  # predicted boxes are in units of this side
        target = [[v / s for v in r.box] for r, s in zip(batch * 2, sides, strict=True)]
        overlap = _iou(boxes, torch.tensor(target, device=boxes.device)[:, None])
        return torch.where(overlap >= self.iou, probs, 0.0).amax(dim=1)

    def _verdict(self, score: float, source: float) -> Verdict:
        bar = self.threshold * source
        return Verdict(score, source, bar, source <= 0.0 or score >= bar)


def _iou(cxcywh: Any, xyxy: Any) -> Any:
    """Elementwise IoU of broadcastable ``(..., 4)`` boxes, centre-size against corners."""
    lo, hi = cxcywh[..., :2] - cxcywh[..., 2:] / 2, cxcywh[..., :2] + cxcywh[..., 2:] / 2
    inter = (hi.minimum(xyxy[..., 2:]) - lo.maximum(xyxy[..., :2])).clamp(min=0).prod(-1)
    union = (hi - lo).prod(-1) + (xyxy[..., 2:] - xyxy[..., :2]).clamp(min=0).prod(-1) - inter
    return inter / union.clamp(min=1e-9)

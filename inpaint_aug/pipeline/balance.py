"""Per-class targets: extra copies of the images that hold a class, until it has N redraws.

A class's target is its ``target: N`` in the prompts file, else ``--balance N`` (no target for
skipped classes and classes without a prompt). After the ``--copies`` copies are planned, the
planner (:func:`~inpaint_aug.pipeline.plan.plan_dataset`) calls :func:`extra_copies`:

* classes are served rarest first (fewest planned redraws, then category id);
* for a class below its target, the images holding it are taken in dataset order, round after
  round, and each gets one more copy until the class reaches its target;
* an extra copy redraws only the objects of classes still below their target when it is added
  (``max_per_image`` still applies), so no class above its target gets extra edits; a copy
  that would not redraw the class being served is not added;
* no image gets more than ``max_copies`` copies in all (``--max-copies``), so a class whose
  images are all at the cap stops short, and :func:`class_balance` says so.

Targets count planned redraws, and planning already leaves out the objects that cannot be
painted (``occluded``, ``too-thin``); what the run alone can find (a rejected redraw, invalid
model output, an unreadable image) is not made up for. Extra copies get the next copy indexes
of their image (``--copies``, ``--copies + 1``...), hence their own seeds and output names.
Pure and deterministic: the planning function is passed in, so this module knows no COCO or model.

Example:
    >>> holders = {7: [0, 1]}
    >>> redraws = lambda image, copy, classes: {7: 1} if 7 in classes else {}
    >>> [(x.image, x.copy) for x in extra_copies({7: 3}, {7: 1}, holders, 1, 2, redraws)]
    [(0, 1), (1, 1)]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inpaint_aug.choices import Mode
from inpaint_aug.dataset.prompts import PromptBook
from inpaint_aug.options import PlanSettings

Redraws = Callable[[int, int, frozenset], Mapping[Any, int]]
"""``redraws(image, copy, classes)``: planned redraws per class of that copy of image number
``image`` when only objects of ``classes`` may be redrawn."""


@dataclass(frozen=True)
class ExtraCopy:
    """One extra copy: image position, copy index, and the classes it may redraw."""

    image: int
    copy: int
    classes: frozenset


@dataclass(frozen=True)
class ClassBalance:
    """The plan of one class with a target.

    Attributes:
        category_id: the class.
        source: its instances in the planned source images (crowd regions not counted).
        target: redraws wanted in the output.
        planned: redraws planned, in every copy.
        images: source images with at least one planned redraw of it.
        extra: planned redraws of it in extra copies.
    """

    category_id: Any
    source: int
    target: int
    planned: int
    images: int
    extra: int

    @property
    def reached(self) -> bool:
        """Whether the plan reaches the target."""
        return self.planned >= self.target


def class_targets(book: PromptBook, settings: PlanSettings) -> dict[Any, int]:
    """Each class's target: its own ``target``, else ``settings.balance`` (none when skipped)."""
    targets: dict[Any, int] = {}
    if settings.mode is Mode.background:
        return targets  # no object is redrawn
    for cid, spec in book.by_category.items():
        target = spec.target if spec.target is not None else settings.balance
        if target and not spec.skip:
            targets[cid] = target
    return targets


def extra_copies(
    targets: Mapping[Any, int],
    counts: Mapping[Any, int],
    holders: Mapping[Any, Sequence[int]],
    copies: int,
    max_copies: int,
    redraws: Redraws,
) -> list[ExtraCopy]:
    """Plan the extra copies that bring each class to its target (see the module docstring).

    Args:
        targets: redraws wanted, per class.
        counts: redraws already planned in the ``copies`` copies, per class.
        holders: per class, the positions of the images holding it, in dataset order.
        copies: copies already planned per image (extra ones are numbered from there).
        max_copies: the most copies of one image, in all.
        redraws: plans one copy (see :data:`Redraws`).
    """
    planned = Counter({c: counts.get(c, 0) for c in targets})
    taken: Counter = Counter()
    added: list[ExtraCopy] = []
    while True:  # passes until one adds nothing: a class that reaches its target frees slots
        before = len(added)
        for cid in sorted(targets, key=lambda c: (planned[c], str(c))):
            progress = True
            while planned[cid] < targets[cid] and progress:
                progress = False
                for image in holders.get(cid, ()):
                    if planned[cid] >= targets[cid]:
                        break
                    copy = copies + taken[image]
                    if copy >= max_copies:
                        continue
                    below = frozenset(c for c, t in targets.items() if planned[c] < t)
                    got = redraws(image, copy, below)
                    if got.get(cid):
                        added.append(ExtraCopy(image, copy, below))
                        taken[image] += 1
                        planned.update(got)
                        progress = True
        if len(added) == before:
            return added


def add_extra_copies(
    jobs: list[Any],
    images: list[dict[str, Any]],
    kept: Mapping[Any, list[dict[str, Any]]],
    targets: Mapping[Any, int],
    settings: PlanSettings,
    plan_copy: Callable[..., tuple[Any, Any]],
) -> list[Any]:
    """The jobs plus the extra copies that targets need, in image order, then copy order.

    Args:
        jobs: the jobs of the ``--copies`` copies, in image order.
        images: the planned source images.
        kept: their kept annotations, by image id.
        targets: see :func:`class_targets`.
        settings: ``copies`` and ``max_copies``.
        plan_copy: ``plan_copy(image, annotations, copy, classes=classes)`` plans one copy:
            ``(job, skips)``, as :func:`~inpaint_aug.pipeline.plan.plan_image`.
    """
    holders: dict[Any, list[int]] = {}
    for pos, image in enumerate(images):
        for cid in dict.fromkeys(a["category_id"] for a in kept.get(image["id"], [])):
            holders.setdefault(cid, []).append(pos)
    made: dict[tuple[int, int], Any] = {}

    def redraws(pos: int, copy: int, classes: frozenset) -> Counter:
        anns = kept.get(images[pos]["id"], [])
        made[pos, copy] = job = plan_copy(images[pos], anns, copy, classes=classes)[0]
        return Counter(e.category_id for e in job.edits)

    counts = Counter(e.category_id for job in jobs for e in job.edits)
    extra = extra_copies(targets, counts, holders, settings.copies, settings.max_copies, redraws)
    rank = {id(image): pos for pos, image in enumerate(images)}
    added = [made[x.image, x.copy] for x in extra]
    return sorted(jobs + added, key=lambda job: (rank[id(job.image)], job.copy))


def class_balance(
    jobs: Iterable[Any],
    annotations: Iterable[dict[str, Any]],
    targets: Mapping[Any, int],
    copies: int,
) -> list[ClassBalance]:
    """The per-class plan of every class with a target in the planned images, from the jobs.

    Args:
        jobs: the planned :class:`~inpaint_aug.pipeline.plan.ImageJob` s.
        annotations: the kept annotations of the planned source images.
        targets: see :func:`class_targets`.
        copies: ``--copies``: jobs with a higher copy index are extra copies.
    """
    source = Counter(a.get("category_id") for a in annotations if not a.get("iscrowd"))
    planned, extra, images = Counter(), Counter(), {c: set() for c in targets}
    for job in jobs:
        cats = Counter(e.category_id for e in job.edits)
        planned.update(cats)
        if job.copy >= copies:
            extra.update(cats)
        for cid in cats:
            images.setdefault(cid, set()).add(id(job.image))
    return [
        ClassBalance(cid, source[cid], t, planned[cid], len(images[cid]), extra[cid])
        for cid, t in sorted(targets.items(), key=lambda item: str(item[0]))
        if source[cid]
    ]


def shortfalls(
    jobs: Iterable[Any],
    kept: Mapping[Any, list[dict[str, Any]]],
    targets: Mapping[Any, int],
    settings: PlanSettings,
    names: Mapping[Any, str],
) -> list[tuple[Any, str]]:
    """``(category id, why)`` for each class whose plan does not reach its target."""
    anns = [a for image_anns in kept.values() for a in image_anns]
    return [
        (
            row.category_id,
            _shortfall(row, names.get(row.category_id, str(row.category_id)), settings.max_copies),
        )
        for row in class_balance(jobs, anns, targets, settings.copies)
        if not row.reached
    ]


def _shortfall(row: ClassBalance, name: str, max_copies: int) -> str:
    """One line saying that a class cannot reach its target, and why."""
    return (
        f"class {name!r} cannot reach its target of {row.target} redraws: {row.planned} "
        f"planned from {row.images} image(s) holding {row.source} instance(s), each at most "
        f"--max-copies {max_copies} copies (objects that are not redrawable do not count)"
    )

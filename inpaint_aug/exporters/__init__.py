"""Exporters: write a COCO dataset out in the formats trainers read.

Modules:
    yolo: :func:`~inpaint_aug.exporters.yolo.export_yolo`, one split of an Ultralytics YOLO
        dataset (detect or segment).
    yolo_labels: the label geometry (COCO boxes, polygons and RLE masks as normalized rows).
    yolo_layout: the class map, ``data.yaml``, the manifests, the output-folder checks and
        placing images (hard links where possible).

Layering: exporters import only :mod:`inpaint_aug.errors`, :mod:`inpaint_aug.geometry`,
:mod:`inpaint_aug.files`, :mod:`inpaint_aug.choices`, ``inpaint_aug.dataset.*`` and each other,
never the pipeline; every file goes through :mod:`inpaint_aug.files`.
"""

"""Demo data: a synthetic COCO dataset of shapes for examples, tests and benchmarks."""

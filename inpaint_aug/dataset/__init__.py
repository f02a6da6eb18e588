"""Dataset inputs: COCO annotations, the prompts file and the image files."""

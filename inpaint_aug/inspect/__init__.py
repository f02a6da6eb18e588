"""Checks before a run: dataset validation and preview contact sheets, without a model run."""

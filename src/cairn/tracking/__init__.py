"""Experiment tracking: runs, params, metrics, artifacts, and the lineage every run records."""

"""Pipelines: stages in cairn.yaml/dvc.yaml, the lock, repro, run cache, params/metrics/plots."""

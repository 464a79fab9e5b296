"""Pipelines: stages in cairn.yaml/dvc.yaml, the lock, repro, the run cache, params/metrics/plots."""

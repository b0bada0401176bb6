"""Kubeflow Pipelines v2 runner for shopbusy: compile, submit, schedule."""

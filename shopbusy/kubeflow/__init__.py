"""Kubeflow Pipelines v2 (and Vertex AI) for shopbusy: compile, submit, schedule; the image."""

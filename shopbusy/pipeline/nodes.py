"""The DAG's node ids: one table for the pipeline, the readers of its results, the Kubeflow
tools and the benchmark.

Each id is also a task name in a compiled Kubeflow spec, where open-source KFP hands it to
Argo unchanged (kubeflow/pipelines backend/src/v2/compiler/argocompiler/argo.go, "TODO(Bobgy):
sanitize"), and Argo accepts only `[a-zA-Z0-9][-a-zA-Z0-9]*` (kubeflow/spec.py checks it).
Hence CamelCase, as TFX's own component ids, and no underscores.
"""

EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
SCHEMA_GEN = "ImportSchemaGen"
EXAMPLE_VALIDATOR = "ExampleValidator"
DISTRIBUTION_VALIDATOR = "DistributionValidator"
ANOMALY_GATE = "AnomalyGate"
# Cluster runs only: readers of the record of accepted spans (components/accepted_spans.py).
PREVIOUS_ACCEPTED_SPAN = "PreviousAcceptedSpan"
ACCEPTED_TRAINING_SPANS = "AcceptedTrainingSpans"
TRANSFORM = "Transform"
TRAINER = "Trainer"
# The latest blessed model (Evaluator baseline, warm start): TFX's resolver, or the ServedModel
# task on open-source KFP. Was `latest_blessed_model_resolver`, which Argo refuses.
LATEST_BLESSED_MODEL = "LatestBlessedModel"
EVALUATOR = "Evaluator"
PUSHER = "Pusher"
# Cluster runs only: the slice report as the run page's artifacts (components/slice_report.py).
SLICE_REPORT = "SliceReport"

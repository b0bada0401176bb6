"""Every default of the pipeline, in one place. The CLI overrides some of them per run."""

import dataclasses
import os
from typing import List, Optional, Tuple

from shopbusy.components.modules import candidates as candidate_names
from shopbusy.pipeline.target import LOCAL, Target

# The installed `shopbusy` package: the schema and the bundled data ship inside it.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE_NAME = "shopbusy"  # also valid as a Kubeflow pipeline name: [a-z0-9][a-z0-9-]*
DEFAULT_DATA = os.path.join(PACKAGE_ROOT, "data", "shops", "shops.csv")
DEFAULT_WORKDIR = "workdir"
SCHEMA_PATH = os.path.join(PACKAGE_ROOT, "schemas", "schema.pbtxt")
# The Transform and Trainer user code, named by import path (this project is installed
# wherever the pipeline runs: the venv, the Kubeflow image), with a digest of the module
# sources in the components' custom_config, so that editing them re-runs those components
# (pipeline.py:module_digest).
MODULES_DIR = os.path.join(PACKAGE_ROOT, "components", "modules")
PREPROCESSING_FN = "shopbusy.components.modules.preprocessing.preprocessing_fn"
RUN_FN = "shopbusy.components.modules.model.run_fn"
# The Evaluator's custom_extractors (installed with shopbusy, so no wheel is built for it).
EVALUATOR_EXTRACTORS = "shopbusy.components.evaluator_extractors"
# TFMA's histogram metrics with their shared calibration histogram in numpy arrays (the
# Evaluator's memory peak at a million rows); installed with shopbusy like the extractors.
EVALUATOR_METRICS = "shopbusy.components.evaluator_metrics"

# ExampleGen's hash split, in buckets: 60 % to fit the model (50 % train, 10 % for early
# stopping) and 40 % held out for the Evaluator, as the article's 60/40 split.
SPLIT_BUCKETS = {"train": 5, "valid": 1, "eval": 4}
TRAIN_SPLIT, VALID_SPLIT, EVAL_SPLIT = "train", "valid", "eval"

# Inputs larger than this run Beam with one worker process per core; smaller ones in
# memory, where worker start-up (each re-imports TensorFlow) would dominate.
MULTI_PROCESSING_MIN_BYTES = 50 * 1024 * 1024
# The Evaluator pays off worker processes much earlier: TFMA's metrics are per-example Python
# combiners, split over the workers after a reshuffle (components/evaluator_extractors.py).
# Break-even measured at about 100,000 rows (3.8 MB of CSV); 1.65 x faster at a million.
EVALUATOR_MULTI_PROCESSING_MIN_BYTES = 8 * 1024 * 1024


# --on-drift: when the newest span drifted from the previous one, record it and carry on
# (the Evaluator judges the new model on the new span), or reject the span.
ON_DRIFT = ("warn", "stop")

# The slice report marks slices with fewer eval examples than this as too few to trust.
REPORT_MIN_SLICE_EXAMPLES = 30
# The drift section plots the distributions of this many columns, the most drifted first.
REPORT_DRIFT_PLOTS = 3


@dataclasses.dataclass(frozen=True)
class Metric:
    """A TFMA metric the Evaluator computes for every slice."""

    class_name: str  # the tfma.metrics class, or one in `module`
    key: str  # the name TFMA stores its value under
    label: str  # how the console and the report name it
    options: Tuple[Tuple[str, object], ...] = ()  # the metric's TFMA config (keyword arguments)
    # When the metric does not exist for a slice: each entry is confusion cells that must not
    # all be zero, and what it means when they are. TFMA still stores a number then (AUC 0,
    # precision 0 or nan), which the report and its JSON show as undefined, with the reason.
    needs: Tuple[Tuple[Tuple[str, ...], str], ...] = ()
    count: bool = False  # a number of examples (shown whole), not a rate (shown to 4 decimals)
    module: str = ""  # where class_name is defined, when it is not one of tfma.metrics


POSITIVES = (("true_positives", "false_negatives"), "no busy example in the slice")
NEGATIVES = (("false_positives", "true_negatives"), "no not-busy example in the slice")
PREDICTED_POSITIVES = (("true_positives", "false_positives"), "no example predicted busy")

# What the Evaluator computes and the report shows, in this order. The classes in
# EVALUATOR_METRICS are TFMA's own, reading each example faster and holding the AUC's histogram
# and the confusion counts in arrays (components/evaluator_metrics.py).
METRICS = (
    Metric("DirectExampleCount", "example_count", "examples", count=True, module=EVALUATOR_METRICS),
    Metric("DirectBinaryAccuracy", "binary_accuracy", "accuracy", module=EVALUATOR_METRICS),
    # 1,000 thresholds, not TFMA's 10,000: the AUC moves in the fifth decimal, while turning
    # each slice's 10,000-bucket calibration histogram into matrices is a fixed cost per model
    # and run (figures: bench/notes.md, "The Evaluator at a million rows").
    Metric(
        "ArrayHistogramAUC", "auc", "AUC", options=(("num_thresholds", 1000),), needs=(POSITIVES, NEGATIVES),
        module=EVALUATOR_METRICS,
    ),
    Metric("DirectPrecision", "precision", "precision", needs=(PREDICTED_POSITIVES,), module=EVALUATOR_METRICS),
    Metric("DirectRecall", "recall", "recall", needs=(POSITIVES,), module=EVALUATOR_METRICS),
    Metric("DirectFallOut", "fall_out", "FPR", needs=(NEGATIVES,), module=EVALUATOR_METRICS),
    Metric("DirectMissRate", "miss_rate", "FNR", needs=(POSITIVES,), module=EVALUATOR_METRICS),
    Metric("DirectTruePositives", "true_positives", "TP", count=True, module=EVALUATOR_METRICS),
    Metric("DirectTrueNegatives", "true_negatives", "TN", count=True, module=EVALUATOR_METRICS),
    Metric("DirectFalsePositives", "false_positives", "FP", count=True, module=EVALUATOR_METRICS),
    Metric("DirectFalseNegatives", "false_negatives", "FN", count=True, module=EVALUATOR_METRICS),
)
METRIC_BY_KEY = {metric.key: metric for metric in METRICS}

# The score above which a row is predicted busy: TFMA's default for BinaryAccuracy and the
# confusion counts (the eval config leaves it at that), and `shopbusy predict`'s.
DECISION_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class Plot:
    """A TFMA plot the Evaluator computes for every slice (the report draws the overall one)."""

    class_name: str  # the tfma.metrics class, or one in `module`
    key: str  # the name TFMA stores it under
    options: Tuple[Tuple[str, object], ...] = ()
    module: str = ""  # where class_name is defined, when it is not one of tfma.metrics


# Both are derived from the same 10,000-bucket calibration histogram TFMA already keeps for
# the AUC, so they add rebinning and output per slice, not another pass over the examples
# (figures: bench/notes.md, "Threshold and calibration plots"). The three are TFMA's classes
# with that histogram's accumulator in numpy arrays (components/evaluator_metrics.py).
PLOTS = (
    # Confusion counts at thresholds 0, 0.01, ..., 1 (DECISION_THRESHOLD among them).
    Plot(
        "ArrayHistogramConfusionMatrixPlot", "confusion_matrix_plot", options=(("num_thresholds", 100),),
        module=EVALUATOR_METRICS,
    ),
    # The reliability diagram's ten equal-width buckets of the predicted score.
    Plot("ArrayHistogramCalibrationPlot", "calibration_plot", options=(("num_buckets", 10),), module=EVALUATOR_METRICS),
)


@dataclasses.dataclass(frozen=True)
class Gates:
    """The push gates, checked by TFMA on the overall slice of the eval split (see GATES)."""

    min_accuracy: float = 0.85
    max_fpr: float = 0.20
    max_fnr: float = 0.20
    max_accuracy_drop: float = 0.01  # against the latest blessed model


@dataclasses.dataclass(frozen=True)
class Gate:
    """How one Gates field becomes a TFMA threshold, a CLI flag and a line of the verdict."""

    field: str  # of Gates; the CLI flag is --field-with-dashes
    metric: Metric
    comparison: str  # ">=": the value must be at least the bound; "<=": at most
    label: str
    help: str
    change: bool = False  # bounds candidate minus baseline, at minus the field's value

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    def bound(self, gates: Gates) -> float:
        value = getattr(gates, self.field)
        return -value if self.change else value


# The one table of gates: eval_config() and gates_of() (pipeline/eval_config.py), the CLI's
# flags, the verdict's lines (results/evaluation.py) and the report all follow it.
GATES = (
    Gate("min_accuracy", METRIC_BY_KEY["binary_accuracy"], ">=", "accuracy", "gate: overall accuracy >= X"),
    Gate(
        "max_accuracy_drop",
        METRIC_BY_KEY["binary_accuracy"],
        ">=",
        "accuracy change vs baseline",
        "gate: accuracy may fall at most X below the latest blessed model",
        change=True,
    ),
    Gate("max_fpr", METRIC_BY_KEY["fall_out"], "<=", "false-positive rate", "gate: false-positive rate <= X"),
    Gate("max_fnr", METRIC_BY_KEY["miss_rate"], "<=", "false-negative rate", "gate: false-negative rate <= X"),
)


# Every candidate model the Trainer knows (components/modules/candidates.py; built in model.py and trees.py).
CANDIDATES = candidate_names.NAMES


@dataclasses.dataclass(frozen=True)
class Training:
    """Trainer hyperparameters: the article's network and schedule, seeded."""

    epochs: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    # The article used 0.2; 0.5 narrowed the gap to the Bayes accuracy in a sweep of 5 seeds
    # on 2 datasets (mean gap 0.019 against 0.030; bench/notes.md, in docs/benchmarks.md).
    dropout: float = 0.5
    early_stopping_patience: int = 15
    seed: int = 0
    # Seeded starts tried for `restart_epochs` each; training continues from the best on
    # validation loss. Cheap insurance against the article's bad minima (see the benchmark).
    restarts: int = 3
    restart_epochs: int = 1
    # The candidates fitted; the one with the lowest validation loss is exported, or their
    # ensemble (components/modules/model.py; docs/benchmarks.md, "Model quality by rule").
    candidates: Tuple[str, ...] = CANDIDATES
    # The budget for large data: at most this many steps per epoch, and examples per
    # candidate (the article's batch of 32 x 20,000 steps; components/modules/model.py:_schedule).
    max_steps_per_epoch: int = 1_000
    max_train_examples: int = 640_000
    # Up to this many training and validation rows together, the trees are chosen and fitted
    # by cross-validation over both (components/modules/trees.py:cross_fit): a few hundred
    # validation rows choose noisily. Beyond it the validation split is large enough to
    # choose alone, and five folds times two shapes would cost ten fits.
    trees_cross_fit_rows: int = 20_000
    # Start from the latest blessed model's weights when its inputs are this run's (the
    # Trainer's base_model; components/modules/model.py:plan_starts), else start cold. The
    # CLI turns it on for span folders (docs/benchmarks.md, "Warm start").
    warm_start: bool = False

    def as_custom_config(self) -> dict:
        return dataclasses.asdict(self)


METADATA_FILE = "metadata.sqlite"  # ML Metadata, in a workdir (and in run-local's)
SERVING_DIR = "serving"  # the served models' folder, in a workdir and under a Kubeflow pipeline root
GCS = "gs://"  # the one remote filesystem the image's TensorFlow has (Kubeflow roots, serving)


@dataclasses.dataclass(frozen=True)
class Workdir:
    """The layout of a workdir, which successive runs share (baseline, cache, served models)."""

    root: str

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.root, "pipeline")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.root, METADATA_FILE)

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.root, SERVING_DIR)

    @property
    def report_dir(self) -> str:
        return os.path.join(self.root, "report")


def report_page(report_root: str, run_id: str) -> str:
    """Where a run's slice report page is written under a report folder."""
    return os.path.join(report_root, run_id.replace(":", "-"), "index.html")


def report_data_file(report_root: str, run_id: str) -> str:
    """The report's numbers as JSON, beside the run's page (results/report_data.py)."""
    return os.path.join(os.path.dirname(report_page(report_root, run_id)), "report.json")


def latest_report_page(report_root: str) -> str:
    """The copy of the newest run's page under a report folder."""
    return os.path.join(report_root, "latest.html")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What the pipeline needs, whichever runner runs it; built by the CLI from defaults and flags."""

    data_root: str
    data_pattern: str
    pipeline_root: str
    serving_dir: str
    metadata_path: Optional[str] = None  # SQLite ML Metadata (local target); a cluster has its own
    schema_path: str = SCHEMA_PATH
    gates: Gates = Gates()
    training: Training = Training()
    beam_args: List[str] = dataclasses.field(default_factory=list)
    evaluator_beam_args: List[str] = dataclasses.field(default_factory=list)  # after beam_args, for the Evaluator
    # Continuous training over span folders (README, "Weekly data"):
    train_spans: int = 1  # the Trainer fits the newest K accepted spans
    on_drift: str = "warn"  # drift from the previous span: "warn" records it, "stop" rejects the span
    ingest_span: Optional[int] = None  # this span rather than the newest (backfilling earlier weeks)
    # With K > 1, Transform reads the analyzer cache of the last accepted week's Transform and
    # analyses only the new span (`--no-analyzer-cache`: every span again, as without weeks).
    analyzer_cache: bool = True
    # TFMA's 95 % interval on every slice metric (`run --intervals`; pipeline/eval_config.py):
    # the report then flags a slice below the floor only when its whole interval is. Off by
    # default: the Evaluator takes 4.5 to 9 times as long, in one process (evaluator_beam_args).
    confidence_intervals: bool = False
    # Where the DAG runs: what differs between local, open-source KFP and Vertex AI runs.
    target: Target = LOCAL

    @classmethod
    def local(cls, data_root: str, data_pattern: str, workdir: Workdir, **kwargs) -> "RunConfig":
        """A run on this machine, keeping everything in `workdir`."""
        return cls(
            data_root=data_root,
            data_pattern=data_pattern,
            pipeline_root=workdir.pipeline_root,
            serving_dir=workdir.serving_dir,
            metadata_path=workdir.metadata_path,
            **kwargs,
        )


DIRECT_NUM_WORKERS = "--direct_num_workers"
MULTI_PROCESSING, IN_MEMORY = "--direct_running_mode=multi_processing", "--direct_running_mode=in_memory"


def multi_processing(workers: Optional[int] = None) -> List[str]:
    """DirectRunner with worker processes: `workers`, else one per core of this machine."""
    return [MULTI_PROCESSING, f"{DIRECT_NUM_WORKERS}={workers or os.cpu_count() or 1}"]


# This project's setup.py in a checkout (an installed wheel has none).
PROJECT_SETUP_FILE = os.path.join(os.path.dirname(PACKAGE_ROOT), "setup.py")


def pipeline_package_args(setup_file: str) -> List[str]:
    """`--setup_file` naming this project: what a remote Beam runner would stage (shopbusy and,
    through its requirements, TFX). It is also what keeps TFX 1.16 from copying its whole
    install (41 MB) into a new temporary folder and building an sdist of it in every Beam
    component when the Beam options name no package (tfx/utils/dependency_utils.py
    make_beam_dependency_flags, called by BaseBeamExecutor.__init__): about 2.5 s a component,
    a folder never deleted, and of no use to the DirectRunner, which stages nothing."""
    return [f"--setup_file={setup_file}"]


def default_beam_args(input_bytes: int, extra: Optional[List[str]] = None) -> List[str]:
    """DirectRunner options sized for the input; `extra` (from --beam-arg) goes last and wins."""
    mode = multi_processing() if input_bytes >= MULTI_PROCESSING_MIN_BYTES else [IN_MEMORY]
    package = pipeline_package_args(PROJECT_SETUP_FILE) if os.path.exists(PROJECT_SETUP_FILE) else []
    return mode + package + list(extra or [])


def evaluator_beam_args(input_bytes: int, extra: Optional[List[str]] = None, intervals: bool = False) -> List[str]:
    """The Evaluator's own DirectRunner options, which override the pipeline's: worker
    processes from EVALUATOR_MULTI_PROCESSING_MIN_BYTES on, except with `intervals`; `extra`
    still wins.

    With TFMA's jackknife intervals the Evaluator stays in one process whatever the size: in
    Beam's worker processes slices lost some of their 20 delete-a-bucket samples (each 1 to 4
    at a million rows) and TFMA then computed no interval for them (0 of 170 slices had one at
    a million rows, 2026-12-02; 37 and 0 of 170 in two runs at 300,000), while in memory every slice got one at every size measured. The
    cause is not isolated (bench/notes.md, "Intervals with worker processes");
    an interval asked for is worth the slower run."""
    if input_bytes < EVALUATOR_MULTI_PROCESSING_MIN_BYTES:
        return []
    mode = [IN_MEMORY] if intervals else multi_processing()
    return mode + list(extra or [])

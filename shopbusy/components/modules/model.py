"""Trainer module: candidate models on Transform's features, the best on validation, its export.

Users bring their own shops, whose busy rule is not the bundled one, so the Trainer fits
models of different shapes and exports the one with the lowest validation loss
(CANDIDATES; how each fared on each rule: docs/benchmarks.md, "Model quality by rule"):

- "dense": the article's network, 128-256-128 with dropout over one-hot and z-scored inputs.
- "embedding": a smaller network over learned 8-d embeddings of the categorical columns;
  it finds groups of shop types that behave alike (or unlike the rest).
- "linear": logistic regression over one-hot columns and the numeric columns cut into
  quarter-standard-deviation bins; additive effects and thresholds of numeric columns,
  with little to overfit.
- "crossed": "linear" plus crosses of shop type x hour, shop type x weekday and weekday x
  hour, for rules where each kind of shop keeps its own hours (the wide part of Cheng et
  al., "Wide & Deep Learning for Recommender Systems").
- "pairwise": "linear" plus every pair of columns crossed, learned rather than listed: a
  factorization machine (Rendle, "Factorization Machines", ICDM 2010) over the categorical
  columns and the measurements' bins, each value a learned 8-d vector, each pair's effect
  the product of their vectors. It reads cut-offs that act only together (a long wait near
  against far), which no listed cross covers, at little more than a linear model's cost.
  The five distractor columns enter its linear part only: their pairs, noise to a rule,
  cost 0.02-0.03 of accuracy on 2,800 training rows (measured outside TFX, time-distance
  rule, 0.77 against 0.80).
- "trees": gradient-boosted trees (trees.py), served as plain TF ops (tree_layer.py):
  cut-offs, a category's own hours, any interaction a few splits deep.

When several candidates fit about equally well (their validation loss within noise of the
best's, `within_noise`), their average is scored as a further choice (`ensemble`):
models that are equally good but wrong on different rows make part of each other's errors
good. The candidates are tuned on half of the validation rows and judged on the other half
(`Validation`), and on small data the trees are cross-fitted over the training and
validation rows (trees.cross_fit), which makes theirs the one figure from every row: the
lowest validation loss is exported when it beats the trees by more than noise, else the
trees (`choose_export`).

Selection stays inside the Trainer (one TFX component, one SavedModel out), is seeded, and
is recorded in history.json with each candidate's validation loss and accuracy and why the
export was chosen; the report shows it. Validation loss is the score: a proper scoring
rule, less noisy than the accuracy of a few hundred validation rows. The Tuner component was not used: it searches one
model's hyperparameters and needs a second pass of the data through another component,
while the choice here is between model shapes, each cheap on its own.

Keras 2 (tf_keras) is used on purpose: TFX 1.16's Transform layer and Evaluator expect it,
and TF 2.16 would otherwise pick Keras 3.
"""

import dataclasses
import json
import math
import os
import time
from typing import Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tf_keras.src.saving.legacy.saved_model import utils as keras_saved_model_utils  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from shopbusy.components.modules import autograph, candidates, features, tree_layer, trees  # noqa: E402
from shopbusy.components.modules.features import HISTORY_FILE, SERVING_OUTPUT_KEY  # noqa: E402

autograph.exempt_libraries()

READ_BATCH_SIZE = 1024
SHUFFLE_BUFFER = 100_000
# Beside each exported model (ignored by serving): its weights and what they fit, so that
# the next run can start from them (the Trainer's base_model; see plan_starts).
WARM_START_DIR = os.path.join("assets.extra", "warm_start")
WARM_START_INPUTS = "inputs.json"
WARM_START_WEIGHTS = "weights"
WARM_START_PREFIX = "warm start"  # how a continued candidate's start reads (Start.why)

# The linear candidates: the column pairs crossed, the z-score bins of the numeric columns.
# Convex, so they take a larger step and batch than the networks, need less patience, and
# gain nothing from several starts.
CROSSES = [("shop_type", "hour"), ("shop_type", "weekday"), ("weekday", "hour")]
Z_SCORE_BINS = [-2.0 + 0.25 * i for i in range(17)]
LINEAR_LEARNING_RATE = 0.05
LINEAR_BATCH_SIZE = 256
LINEAR_PATIENCE = 5
EMBEDDING_DIM = 8
EMBEDDING_DROPOUT = 0.3
# The factorization machine: the size of each value's vector and their L2 penalty; not
# convex, so a smaller step than the linear ones and a network's patience, with their batch.
PAIRWISE_DIM = 8
PAIRWISE_L2 = 1e-5
PAIRWISE_LEARNING_RATE = 0.003
PAIRWISE_PATIENCE = 15
# A candidate joins the ensemble when its mean excess validation loss over the best is
# within this many standard errors (paired by row): about a 95 % one-sided test. The same
# test decides whether a model beats the trees by more than noise (`choose_export`).
ENSEMBLE_Z = 2.0


def _category_sizes(tf_transform_output: tft.TFTransformOutput) -> dict:
    """Number of one-hot slots for each categorical model input."""
    sizes = {
        features.transformed_name(key): tf_transform_output.num_buckets_for_transformed_feature(
            features.transformed_name(key)
        )
        for key in features.CATEGORICAL_FEATURE_KEYS
    }
    for key, (low, high) in features.FIXED_DOMAIN_FEATURES.items():
        sizes[features.transformed_name(key)] = high - low + 1
    return sizes


def _inputs(category_sizes: dict) -> dict:
    inputs = {}
    for key in features.NUMERIC_FEATURE_KEYS:
        name = features.transformed_name(key)
        inputs[name] = keras.layers.Input(shape=(1,), name=name, dtype=tf.float32)
    for name in sorted(category_sizes):
        inputs[name] = keras.layers.Input(shape=(1,), name=name, dtype=tf.int64)
    return inputs


def _numeric(inputs: dict) -> list:
    return [inputs[features.transformed_name(key)] for key in features.NUMERIC_FEATURE_KEYS]


def _one_hot(inputs: dict, category_sizes: dict) -> list:
    return [
        keras.layers.CategoryEncoding(num_tokens=size, output_mode="one_hot")(inputs[name])
        for name, size in sorted(category_sizes.items())
    ]


def _tower(x, layers, dropout):
    for units in layers:
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(dropout)(x)
    return keras.layers.Dense(1, activation="sigmoid")(x)


def _dense(inputs: dict, category_sizes: dict, training):
    columns = _numeric(inputs) + _one_hot(inputs, category_sizes)
    return _tower(keras.layers.concatenate(columns), (128, 256, 128), training["dropout"])


def _embedding(inputs: dict, category_sizes: dict, training):
    embedded = [
        keras.layers.Flatten()(keras.layers.Embedding(size, EMBEDDING_DIM)(inputs[name]))
        for name, size in sorted(category_sizes.items())
    ]
    return _tower(keras.layers.concatenate(_numeric(inputs) + embedded), (128, 128), EMBEDDING_DROPOUT)


def _binned(inputs: dict) -> list:
    return [
        keras.layers.CategoryEncoding(num_tokens=len(Z_SCORE_BINS) + 1, output_mode="one_hot")(
            keras.layers.Discretization(bin_boundaries=Z_SCORE_BINS)(value)
        )
        for value in _numeric(inputs)
    ]


def _crosses(inputs: dict, category_sizes: dict) -> list:
    crossed = []
    for a, b in CROSSES:
        a, b = features.transformed_name(a), features.transformed_name(b)
        cells = category_sizes[a] * category_sizes[b]
        crossed.append(
            keras.layers.CategoryEncoding(num_tokens=cells, output_mode="one_hot")(inputs[a] * category_sizes[b] + inputs[b])
        )
    return crossed


def _linear(inputs: dict, category_sizes: dict, training):
    columns = _one_hot(inputs, category_sizes) + _binned(inputs)
    return keras.layers.Dense(1, activation="sigmoid")(keras.layers.concatenate(columns))


def _crossed(inputs: dict, category_sizes: dict, training):
    columns = _one_hot(inputs, category_sizes) + _binned(inputs) + _crosses(inputs, category_sizes)
    return keras.layers.Dense(1, activation="sigmoid")(keras.layers.concatenate(columns))


def _pairwise(inputs: dict, category_sizes: dict, training):
    """sigmoid(linear + sum over column pairs i < j of <v_i, v_j>), with the pairs' sum
    computed in linear time as ((sum v)^2 - sum v^2) / 2 per vector dimension, each
    dimension then weighted (a Dense layer: built-in layers only, so the SavedModel loads
    anywhere without custom objects)."""
    fields = [(inputs[name], size) for name, size in sorted(category_sizes.items())]
    fields += [
        (keras.layers.Discretization(bin_boundaries=Z_SCORE_BINS)(inputs[features.transformed_name(key)]), len(Z_SCORE_BINS) + 1)
        for key in features.NUMERIC_FEATURE_KEYS
        if key not in features.DISTRACTOR_FEATURE_KEYS
    ]
    vectors = [
        keras.layers.Flatten()(
            keras.layers.Embedding(size, PAIRWISE_DIM, embeddings_regularizer=keras.regularizers.l2(PAIRWISE_L2))(index)
        )
        for index, size in fields
    ]
    summed = keras.layers.Add()(vectors)
    square_of_sum = keras.layers.Multiply()([summed, summed])
    sum_of_squares = keras.layers.Add()([keras.layers.Multiply()([v, v]) for v in vectors])
    pairs = keras.layers.Subtract()([square_of_sum, sum_of_squares])
    linear = keras.layers.Dense(1)(keras.layers.concatenate(_one_hot(inputs, category_sizes) + _binned(inputs)))
    logit = keras.layers.Add()([linear, keras.layers.Dense(1, use_bias=False)(pairs)])
    return keras.layers.Activation("sigmoid")(logit)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """How to build one candidate, and what it changes in Training's (the article's) settings."""

    build: object
    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    early_stopping_patience: Optional[int] = None
    restarts: Optional[int] = None

    def settings(self, training: dict) -> dict:
        changed = {
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "early_stopping_patience": self.early_stopping_patience,
            "restarts": self.restarts,
        }
        return {**training, **{name: value for name, value in changed.items() if value is not None}}


# One model per name of candidates.NAMES (which the CLI checks without importing TensorFlow).
CANDIDATES = {
    candidates.DENSE: Candidate(_dense),
    candidates.EMBEDDING: Candidate(_embedding),
    candidates.LINEAR: Candidate(_linear, LINEAR_LEARNING_RATE, LINEAR_BATCH_SIZE, LINEAR_PATIENCE, restarts=1),
    candidates.CROSSED: Candidate(_crossed, LINEAR_LEARNING_RATE, LINEAR_BATCH_SIZE, LINEAR_PATIENCE, restarts=1),
    candidates.PAIRWISE: Candidate(_pairwise, PAIRWISE_LEARNING_RATE, LINEAR_BATCH_SIZE, PAIRWISE_PATIENCE),
}


def build_model(category_sizes: dict, training, candidate: str = "dense") -> keras.Model:
    """The candidate with a sigmoid output, compiled with the article's metrics; `training`
    is the candidate's settings (Candidate.settings)."""
    inputs = _inputs(category_sizes)
    model = keras.Model(inputs=inputs, outputs=CANDIDATES[candidate].build(inputs, category_sizes, training))
    return _compiled(model, training["learning_rate"])


def _compiled(model, learning_rate: float) -> keras.Model:
    """The model compiled with the article's loss and metrics, which every candidate (trees
    and the ensemble included) is scored with on the validation split."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.TruePositives(name="true_positives"),
            keras.metrics.TrueNegatives(name="true_negatives"),
            keras.metrics.FalsePositives(name="false_positives"),
            keras.metrics.FalseNegatives(name="false_negatives"),
        ],
    )
    return model


def _examples(file_pattern, data_accessor, tf_transform_output):
    """Transformed (features, label) examples, read and parsed once, held in memory in a
    canonical order (`canonical_order`)."""
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=READ_BATCH_SIZE,
            label_key=features.transformed_name(features.LABEL_KEY),
            num_epochs=1,
            shuffle=False,
        ),
        tf_transform_output.transformed_metadata.schema,
    )
    columns, labels = {}, []
    for batch, label in dataset.as_numpy_iterator():
        for key, values in batch.items():
            columns.setdefault(key, []).append(values)
        labels.append(label)
    columns = {key: np.concatenate(parts) for key, parts in columns.items()}
    labels = np.concatenate(labels)
    order = canonical_order(columns, labels)
    return tf.data.Dataset.from_tensor_slices(({key: values[order] for key, values in columns.items()}, labels[order]))


def canonical_order(columns: dict, labels: np.ndarray) -> np.ndarray:
    """The rows' order by their values: a hash of each row first (so neighbours are
    unrelated and alternate rows split the data at random), then the values themselves, so
    that only identical rows tie.

    TFX's ExampleGen reshuffles every split before writing it (TFX 1.16
    components/example_gen/write_split.py, `beam.transforms.Reshuffle`), and no Beam runner
    promises an order: the same records can come back in another order from one run to the
    next (Beam's DirectRunner did on one of 35 benchmark runs; a distributed runner would
    almost always). The seeded shuffle, the validation halves, the trees' sample and folds
    all go by position, so without this a seeded run would repeat only as far as the
    runner's order does. tf.data has no sort, hence numpy; pandas' row hash has a fixed key."""
    import pandas as pd  # TFX's dependency; imported here, as only the Trainer needs it

    if not len(labels):
        return np.arange(0)
    parts = [np.reshape(values, (len(labels), -1)) for _, values in sorted(columns.items())]
    values = np.hstack([*parts, np.reshape(labels, (len(labels), -1))]).astype(np.float64)
    row_hash = pd.util.hash_pandas_object(pd.DataFrame(values), index=False).to_numpy()
    return np.lexsort([*values.T, row_hash])


def _count(examples) -> int:
    """Number of examples (they are held in memory: the count is known)."""
    return int(examples.cardinality())


@dataclasses.dataclass(frozen=True)
class Validation:
    """The validation rows in two halves (alternate rows), batched.

    A network's early stopping keeps the epoch with the lowest loss on the rows it watches,
    and its restarts the start that scored best there: on a few hundred rows those figures
    flatter the network (on one rule a validation accuracy of 0.83-0.84 against 0.79 on
    unseen rows; bench/notes.md). The cross-fitted trees' figures are out of fold and do not.
    So the candidates are tuned on `stopping` (the networks' epochs and restarts, the trees'
    iterations on large data) and judged on `choosing`, which none of them was tuned on:
    the choice, the ensemble's test and its figures compare like with like."""

    stopping: tf.data.Dataset
    choosing: tf.data.Dataset

    @classmethod
    def halves(cls, rows: tf.data.Dataset) -> "Validation":
        """From unbatched (features, label) rows: even rows stop, odd rows choose."""
        half = lambda parity: rows.enumerate().filter(lambda i, _: i % 2 == parity).map(lambda _, row: row)  # noqa: E731
        return cls(half(0).cache().batch(READ_BATCH_SIZE), half(1).cache().batch(READ_BATCH_SIZE))

    @property
    def rows(self) -> tf.data.Dataset:
        """All of them, batched: what a model learns from once the choice is made."""
        return self.stopping.concatenate(self.choosing)


def _schedule(num_examples: int, training: dict):
    """Steps per epoch and epochs within the example budget.

    Small data trains in whole passes (the article's schedule); large data in epochs of at
    most `max_steps_per_epoch` steps, so early stopping looks often, and on at most
    `max_train_examples` examples per candidate, so a million rows train in minutes. The
    budget counts examples, not steps: a network's small batches are cheap steps it needs
    many of, a linear candidate's batch of 256 reaches the same budget in an eighth of them.
    """
    steps_per_epoch = min(math.ceil(num_examples / training["batch_size"]), training["max_steps_per_epoch"])
    examples_per_epoch = steps_per_epoch * training["batch_size"]
    epochs = max(1, min(training["epochs"], training["max_train_examples"] // examples_per_epoch))
    return steps_per_epoch, epochs


def make_serving_signatures(model, tf_transform_output: tft.TFTransformOutput) -> dict:
    """serving_default: serialized raw tf.Examples in, busy probability out.
    transform_features: raw tf.Examples in, model inputs out (used by the Evaluator)."""
    model.tft_layer = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_examples):
        raw_feature_spec = tf_transform_output.raw_feature_spec()
        raw_feature_spec.pop(features.LABEL_KEY)
        raw_features = tf.io.parse_example(serialized_tf_examples, raw_feature_spec)
        transformed = model.tft_layer(raw_features)
        return {SERVING_OUTPUT_KEY: model(transformed)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features_fn(serialized_tf_examples):
        raw_features = tf.io.parse_example(serialized_tf_examples, tf_transform_output.raw_feature_spec())
        return model.tft_layer(raw_features)

    return {"serving_default": serve_tf_examples_fn, "transform_features": transform_features_fn}


def save_served(model, tf_transform_output: tft.TFTransformOutput, serving_model_dir: str) -> None:
    """The SavedModel every loader here reads: its two signatures (and the variables, tables
    and assets they use), without tf_keras's own traces of every layer.

    tf.saved_model.save on a Keras model also traces each layer's call functions and a
    default signature, for reviving the Keras objects (tf_keras 2.16,
    src/saving/legacy/saved_model/save_impl.py, wrap_layer_functions and
    default_save_signature). Nothing reads them: TFX's Evaluator and Pusher, `predict` and
    the image load the SavedModel with TensorFlow and call `serving_default` (TFMA 0.47
    treats it as a generic model, as it has no Keras metadata: utils/model_util.py,
    get_model_type), and warm start reads its own weights (_save_warm_start). Leaving them
    out (`save_traces=False`, what tf_keras's own `model.save(save_traces=False)` sets;
    base_serialization.py, trackable_children) took the export of the trees from 6-10 s to
    2-3 s and of a network from 2-3 s to 1 s, the SavedModel from 3.0 to 2.3 MB, and its
    load from 1.7 to 0.8 s, serving the same outputs to the bit (bench/notes.md)."""
    signatures = make_serving_signatures(model, tf_transform_output)
    with keras_saved_model_utils.keras_option_scope(save_traces=False, in_tf_saved_model_scope=False):
        tf.saved_model.save(model, serving_model_dir, signatures=signatures)


def _fit(model, train, valid, schedule, epochs, initial_epoch=0, callbacks=()):
    steps_per_epoch, _ = schedule
    # Adam's slots made before the first step rather than in it. A tf.function whose first
    # call creates variables is traced twice (once creating them, once without:
    # tensorflow/python/eager/polymorphic_function/polymorphic_function.py, `_call`, TF 2.16),
    # and tracing Keras's train step takes a second or more per model, eleven networks a fresh run.
    # Same slots, same zeros: the trained weights are bit for bit those without (bench/notes.md).
    model.optimizer.build(model.trainable_variables)
    return model.fit(
        train,
        validation_data=valid,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=list(callbacks),
    )


def _best_start(candidate: str, index: int, category_sizes, training, train, valid, schedule):
    """Trains `restarts` seeded initialisations for `restart_epochs` each and returns the one
    with the lowest validation loss, with every restart's loss: the article's "do multiple
    training runs and keep the best", made automatic so no seed is stuck in a bad minimum."""
    trials = []
    for restart in range(training["restarts"]):
        # The first candidate's seeds are those of the single network before candidates.
        keras.utils.set_random_seed(training["seed"] * 1000 + index * 100 + restart)
        model = build_model(category_sizes, training, candidate)
        if training["restarts"] > 1:
            history = _fit(model, train, valid, schedule, training["restart_epochs"])
            trials.append((history.history["val_loss"][-1], restart, model))
        else:
            trials.append((None, restart, model))
    _, chosen, model = min(trials, key=lambda trial: (trial[0] or 0.0, trial[1]))
    return model, {"chosen": chosen, "val_loss": [loss for loss, _, _ in trials if loss is not None]}


def _model_inputs(category_sizes: dict, candidate: str, members=()) -> dict:
    """What a model's weights fit: the candidate (and an ensemble's members), its inputs,
    the one-hot width of each categorical one."""
    record = {
        "candidate": candidate,
        "numeric": sorted(features.transformed_name(k) for k in features.NUMERIC_FEATURE_KEYS),
        "categorical": dict(sorted(category_sizes.items())),
    }
    if members:
        record["members"] = list(members)
    return record


def _blessed_record(base_model, category_sizes: dict, training):
    """The blessed model's warm-start record when its inputs are this run's, with None;
    else None with a sentence saying why every candidate starts cold."""
    if not training.get("warm_start", True):
        return None, "cold start: --no-warm-start"
    # An empty base model is ServedModel's before the first push (components/served_baseline.py).
    if not base_model or not tf.io.gfile.exists(base_model):
        return None, "cold start: no blessed model yet"
    inputs_path = os.path.join(base_model, WARM_START_DIR, WARM_START_INPUTS)
    if not tf.io.gfile.exists(inputs_path):
        return None, f"cold start: the blessed model {base_model} has no warm-start weights"
    with tf.io.gfile.GFile(inputs_path) as f:
        record = json.load(f)
    record.setdefault("candidate", candidates.DENSE)  # models from before the candidates were dense
    wanted = _model_inputs(category_sizes, record["candidate"], record.get("members", ()))
    if record != wanted:
        changed = sorted(
            name
            for name in set(record["categorical"]) | set(wanted["categorical"])
            if record["categorical"].get(name) != wanted["categorical"].get(name)
        )
        why = f"vocabulary sizes changed ({', '.join(changed)})" if changed else "the model's inputs changed"
        return None, f"cold start: {why} since the blessed model"
    return record, None


def _weights_path(base_model: str, record: dict, member: str) -> str:
    """Where a network's weights are kept beside an export: at the top for a single
    candidate (the layout before ensembles), in the member's folder for an ensemble's."""
    folder = os.path.join(base_model, WARM_START_DIR)
    if record.get("members"):
        folder = os.path.join(folder, member)
    return os.path.join(folder, WARM_START_WEIGHTS)


def _continued(base_model: str, record: dict, name: str, index: int, category_sizes: dict, training) -> "Start":
    """How one of the blessed model's candidates continues: a network from its weights,
    the trees refitted (they keep no weights; trees.py)."""
    if name == candidates.TREES:
        return Start(name, index, None, f"refitted: the blessed model {base_model} has trees, which are refitted on every run")
    keras.utils.set_random_seed(training["seed"])
    model = build_model(category_sizes, CANDIDATES[name].settings(training), name)
    model.load_weights(_weights_path(base_model, record, name))
    return Start(name, index, model, f"{WARM_START_PREFIX} from the blessed model {base_model}")


def _save_warm_start(chosen, category_sizes: dict, serving_model_dir: str) -> None:
    """Beside the export: what it fits and, for each network in it, its weights."""
    folder = os.path.join(serving_model_dir, WARM_START_DIR)
    tf.io.gfile.makedirs(folder)
    members = list(chosen.members) or [chosen]
    record = _model_inputs(category_sizes, chosen.name, [member.name for member in chosen.members])
    for member in members:
        if member.name != candidates.TREES:
            path = _weights_path(serving_model_dir, record, member.name)
            tf.io.gfile.makedirs(os.path.dirname(path))
            member.model.save_weights(path)
    with tf.io.gfile.GFile(os.path.join(folder, WARM_START_INPUTS), "w") as f:
        json.dump(record, f)


@dataclasses.dataclass
class Start:
    """How one candidate starts: from the blessed model's weights (`model`), or cold (None)."""

    name: str
    index: int  # in the configured candidates: the seeds of its fresh starts
    model: Optional[object]
    why: str


def plan_starts(base_model, category_sizes: dict, training) -> list:
    """Continuous training continues the blessed model's candidate alone (an ensemble's
    members) when its weights fit this run (a new week refines the shape chosen before, at
    the cost of that shape); otherwise, on a cold start, every candidate is fitted and the
    choice is made again. Only the blessed model's own networks are built and loaded."""
    names = list(training["candidates"])
    record, why = _blessed_record(base_model, category_sizes, training)
    if record is not None:
        members = record.get("members") or [record["candidate"]]
        if all(member in names for member in members):
            return [_continued(base_model, record, m, names.index(m), category_sizes, training) for m in members]
        why = f"cold start: the blessed model is the {record['candidate']} candidate"
    return [Start(name, index, None, why) for index, name in enumerate(names)]


@dataclasses.dataclass
class FittedCandidate:
    """One candidate after training, with what it scored on the validation split."""

    name: str
    model: object
    history: dict
    stopped_early: bool
    first_epoch: int  # epochs spent on the restarts before the main fit
    restarts: dict  # the seeded starts tried: which was chosen, each one's validation loss
    start: str  # "warm start from ...", "cold start: <why>" (Start.why); an ensemble's warm member's, else its best's
    val_loss: float
    val_accuracy: float
    schedule: tuple  # steps per epoch, most epochs
    seconds: float  # spent on this candidate, restarts included
    members: tuple = ()  # an ensemble's candidates
    unit: str = "epoch"  # of the curves: a network's epoch, a boosting iteration
    refit: Optional[dict] = None  # how the exported trees came to learn the validation rows too (`refit`)
    tree_fit: Optional[trees.FittedTrees] = None  # the trees candidate's fit
    # Per validation row, when the model's own would be in-sample (the cross-fitted trees:
    # each row's out-of-fold probability); else None and the model predicts them.
    valid_predictions: Optional[np.ndarray] = None

    def summary(self) -> dict:
        summary = {
            "name": self.name,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "epochs_run": self.first_epoch + len(self.history["val_loss"]),
            "seconds": round(self.seconds, 1),
            "start": self.start,
        }
        if self.members:  # its members' epochs are theirs
            summary.update(members=[member.name for member in self.members], epochs_run=None)
        return summary


def choose(candidates):
    """The candidate with the lowest validation loss; the earlier one on a tie."""
    return min(candidates, key=lambda candidate: candidate.val_loss)


def validation_predictions(fitted, choosing):
    """The choosing rows' labels, and each candidate's probability for each of them: its own
    out-of-fold ones where it keeps them (the cross-fitted trees), else its model's."""
    labels = np.concatenate([label.numpy() for _, label in choosing]).reshape(-1).astype(np.float64)
    predictions = {
        c.name: c.model.predict(choosing, verbose=0)[:, 0].astype(np.float64) if c.valid_predictions is None else c.valid_predictions
        for c in fitted
    }
    return labels, predictions


def paired_z(labels, worse, better) -> float:
    """The mean excess of per-row log loss of `worse` over `better`, in standard errors
    (paired row by row, so the rows' shared difficulty cancels)."""
    excess = trees.log_losses(labels, worse) - trees.log_losses(labels, better)
    mean, error = float(np.mean(excess)), np.std(excess, ddof=1) / np.sqrt(len(excess)) if len(excess) > 1 else 0.0
    if error > 0:
        return mean / error
    return math.copysign(math.inf, mean) if mean else 0.0


def within_noise(fitted, labels, predictions) -> list:
    """The candidates whose validation loss is within noise of the best's: each one's mean
    excess of per-example loss over the best less than ENSEMBLE_Z of its standard errors."""
    best = choose(fitted)
    return [c for c in fitted if c is best or paired_z(labels, predictions[c.name], predictions[best.name]) <= ENSEMBLE_Z]


def choose_export(scored, labels, predictions):
    """What is exported, and why: the candidate (or ensemble) with the lowest validation
    loss when it beats the cross-fitted trees by more than noise (ENSEMBLE_Z paired standard
    errors), else the trees.

    The trees' validation figures are out of fold, from a fit judged on every training and
    validation row; a network's are from a few hundred choosing rows, one draw of noise. On
    the benchmark's rules a lower validation loss within that noise picked a worse model as
    often as a better one (bench/notes.md, "The trees by cross-validation"), while the
    cross-fitted trees alone were at or above the benchmark's trees on most runs. So the
    trees are the default, and another model is exported on evidence. Without cross-fitted
    trees (large data, or not among the candidates) the lowest validation loss decides."""
    best = choose(scored)
    default = next((c for c in scored if c.name == candidates.TREES and c.valid_predictions is not None), None)
    if default is None or best is default:
        return best, f"it has the lowest validation loss ({best.val_loss:.4f})"
    z = paired_z(labels, predictions[default.name], predictions[best.name])
    if z > ENSEMBLE_Z:
        return best, (
            f"it has the lowest validation loss ({best.val_loss:.4f}), below the cross-fitted trees' "
            f"({default.val_loss:.4f}) by {z:.1f} standard errors"
        )
    return default, (
        f"the cross-fitted trees are exported unless another model beats them by more than noise: {best.name}'s "
        f"validation loss {best.val_loss:.4f} is below theirs ({default.val_loss:.4f}) by {z:.1f} standard errors, not {ENSEMBLE_Z:g}"
    )


def ensemble(fitted, labels, predictions, category_sizes: dict, training) -> Optional[FittedCandidate]:
    """The average of the candidates within noise of the best, scored on the validation
    split as each of them was; None when only the best is. Averaging models that fit
    equally well but differently (a network and the trees) removes part of each one's
    error. It is a further candidate for `choose_export`, exported when its validation loss
    is the lowest and beats the cross-fitted trees' by more than noise."""
    if len(fitted) < 2:
        return None
    started = time.monotonic()
    members = within_noise(fitted, labels, predictions)
    if len(members) < 2:
        return None
    # Scored from the members' validation predictions, as each member was: the served
    # average of cross-fitted trees has seen the validation rows.
    averaged = np.mean([predictions[m.name] for m in members], axis=0)
    best = choose(members)
    # A run continued from the blessed model when any member did (the trees are refitted).
    start = next((m.start for m in members if m.start.startswith(WARM_START_PREFIX)), best.start)
    return dataclasses.replace(
        best,  # the curves, restarts and schedule shown are the best member's
        name=candidates.ENSEMBLE,
        model=None,  # built by `refit` once it is exported: building the average takes seconds
        start=start,
        val_loss=float(np.mean(trees.log_losses(labels, averaged))),
        val_accuracy=float(np.mean((averaged > 0.5) == labels)),
        seconds=time.monotonic() - started,
        members=tuple(members),
        tree_fit=None,
        valid_predictions=averaged,
        refit=None,
    )


def _average(members, category_sizes: dict, training) -> keras.Model:
    """One model whose output is the mean of the members' outputs."""
    inputs = _inputs(category_sizes)
    average = keras.layers.Average(name=candidates.ENSEMBLE)([member.model(inputs) for member in members])
    return _compiled(keras.Model(inputs=inputs, outputs=average), training["learning_rate"])


def _tree_rows(examples, category_sizes: dict, training):
    """The trees' (X, y) from (features, label) examples, at most `max_train_examples` rows
    (a seeded sample): the networks' budget."""
    x, y = trees.matrix(examples.batch(READ_BATCH_SIZE * 64).as_numpy_iterator(), category_sizes)
    if len(y) > training["max_train_examples"]:
        keep = np.random.default_rng(training["seed"]).choice(len(y), training["max_train_examples"], replace=False)
        x, y = x[keep], y[keep]
    return x, y


def _start_trees(start: Start, fn_args, category_sizes, training, train_examples, validation: Validation, processes=None):
    """Starts fitting the trees on at most `max_train_examples` training rows (seeded
    sample), in a process of their own when given a list of `processes` (trees.InProcess,
    added to it: the caller stops them), and returns a function that waits for them and
    gives the fitted candidate. On small data (training and validation rows together at
    most `trees_cross_fit_rows`) they are chosen and fitted by cross-validation over all of
    them (trees.cross_fit) and judged by the choosing rows' out-of-fold probabilities; on
    large data fitted on the training rows with the number of iterations that scored best
    on the stopping rows (trees.fit). The rows are read, and the Keras model built, in this
    process: the other holds scikit-learn alone."""
    started = time.monotonic()
    x_train, y_train = _tree_rows(train_examples, category_sizes, training)
    x_stop, y_stop = trees.matrix(validation.stopping.as_numpy_iterator(), category_sizes)
    x_valid, y_valid = trees.matrix(validation.choosing.as_numpy_iterator(), category_sizes)
    if len(y_train) + len(y_stop) + len(y_valid) <= training["trees_cross_fit_rows"]:
        x, y = np.vstack([x_train, x_stop, x_valid]), np.concatenate([y_train, y_stop, y_valid])
        job = (trees.cross_fit, x, y, category_sizes, training["seed"])
    else:
        job = (trees.fit, x_train, y_train, x_stop, y_stop, category_sizes, training["seed"])
    pending = trees.InProcess(*job) if processes is not None else None
    if pending:
        processes.append(pending)
    read_seconds = time.monotonic() - started

    def finish() -> FittedCandidate:
        fitted = pending.result() if pending else job[0](*job[1:])
        building = time.monotonic()
        # Out of fold, the choosing rows are the last of the cross-fitted rows.
        valid_predictions = fitted.out_of_fold[len(fitted.out_of_fold) - len(y_valid) :] if fitted.folds > 1 else None
        model = _compiled(tree_layer.build(_inputs(category_sizes), category_sizes, fitted), training["learning_rate"])
        with tf.summary.create_file_writer(os.path.join(fn_args.model_run_dir, start.name)).as_default():
            for step, loss in enumerate(fitted.history["val_loss"], start=1):
                tf.summary.scalar("val_loss", loss, step=step)
        if valid_predictions is None:
            scores = model.evaluate(validation.choosing, verbose=0, return_dict=True)
            val_loss, val_accuracy = float(scores["loss"]), float(scores["accuracy"])
        else:
            val_loss = float(np.mean(trees.log_losses(y_valid, valid_predictions)))
            val_accuracy = float(np.mean((valid_predictions > 0.5) == y_valid))
        return FittedCandidate(
            name=start.name,
            model=model,
            history=fitted.history,
            stopped_early=fitted.iterations < trees.MAX_ITER,
            first_epoch=0,
            restarts={"chosen": None, "val_loss": []},
            start=start.why,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            schedule=(1, trees.MAX_ITER),
            # Its own work (reading, fitting, building), not the time it ran beside the networks.
            seconds=read_seconds + fitted.seconds + time.monotonic() - building,
            unit="iteration",
            tree_fit=fitted,
            valid_predictions=valid_predictions,
        )

    return finish


def _fit_trees(start: Start, fn_args, category_sizes, training, train_examples, validation: Validation) -> FittedCandidate:
    """The trees candidate, fitted in this process (`_start_trees`)."""
    return _start_trees(start, fn_args, category_sizes, training, train_examples, validation)()


def refit(chosen: FittedCandidate, category_sizes: dict, training, train_examples, num_train, validation: Validation) -> FittedCandidate:
    """The chosen model with its trees (alone or as an ensemble's member) having learned
    from the training and validation rows together, and a record of it; unchanged when it
    has no trees, or when the training rows alone fill the example budget. An ensemble gets
    its served model (the average of its members) here, once it is the one exported.

    Cross-fitted trees (small data) learned from both already. Trees fitted on the training
    rows are refitted on both with the shape and number of iterations the validation rows
    chose: once those are chosen, the validation rows have nothing left to decide and are
    more rows to learn from. The networks are not refitted: a network's refit repeats its
    whole fit, and measured on every rule it won on some and lost on others (bench/notes.md,
    "The networks refitted on train + valid"). The choice's validation figures stay the
    candidates' record; the exported model's figures on those rows, which it has now seen,
    are kept beside them."""
    members = chosen.members or (chosen,)
    fitted_trees = next((m for m in members if m.name == candidates.TREES), None)
    if fitted_trees is None or (fitted_trees.tree_fit.folds == 1 and num_train >= training["max_train_examples"]):
        # Nothing to refit; an exported ensemble's average is built now (`ensemble`).
        return dataclasses.replace(chosen, model=_average(members, category_sizes, training)) if chosen.members else chosen
    started = time.monotonic()
    learned = fitted_trees.tree_fit
    if learned.folds == 1:
        x, y = _tree_rows(train_examples.concatenate(validation.rows.unbatch()), category_sizes, training)
        learned = trees.refit(x, y, category_sizes, training["seed"], learned)
        fitted_trees = dataclasses.replace(
            fitted_trees, model=tree_layer.build(_inputs(category_sizes), category_sizes, learned), tree_fit=learned
        )
        members = tuple(fitted_trees if m.name == candidates.TREES else m for m in members)
    if chosen.members:
        model = _average(members, category_sizes, training)
    else:
        members, model = (), _compiled(fitted_trees.model, training["learning_rate"])
    # The served model's figures on the choosing rows, from its parts: the mean of its
    # members' probabilities, the trees' computed as scikit-learn computes them (what the
    # export serves: tests/test_trees.py). Keras's `evaluate` would trace the whole model
    # for a few hundred rows, seconds of the Trainer for two numbers.
    x_choosing, labels = trees.matrix(validation.choosing.as_numpy_iterator(), category_sizes)
    seen = np.mean(
        [
            trees.predict(learned, x_choosing) if m.name == candidates.TREES else m.model.predict(validation.choosing, verbose=0)[:, 0]
            for m in members or (fitted_trees,)
        ],
        axis=0,
    )
    record = {
        "candidate": candidates.TREES,
        "rows": learned.rows,
        "iterations": learned.iterations,
        "leaves": learned.leaves,
        "folds": learned.folds,
        "seconds": round(time.monotonic() - started, 1),
        "val_loss_seen": float(np.mean(trees.log_losses(labels, seen))),
        "val_accuracy_seen": float(np.mean((seen > 0.5) == labels)),
    }
    return dataclasses.replace(chosen, model=model, members=members, refit=record, tree_fit=chosen.tree_fit and learned)


def _fit_candidate(start: Start, fn_args, category_sizes, training, train_examples, num_train, validation: Validation):
    """Starts the candidate warm from the blessed model when it can (else from the best of
    several fresh starts), fits it with early stopping on the stopping rows, and scores the
    weights it ends with on the choosing rows (Validation)."""
    started = time.monotonic()
    settings = CANDIDATES[start.name].settings(training)
    schedule = _schedule(num_train, settings)
    train = (
        train_examples.shuffle(min(num_train, SHUFFLE_BUFFER), seed=settings["seed"], reshuffle_each_iteration=True)
        .batch(settings["batch_size"])
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    model = start.model
    if model is None:
        model, restarts = _best_start(start.name, start.index, category_sizes, settings, train, validation.stopping, schedule)
        first_epoch = settings["restart_epochs"] if settings["restarts"] > 1 else 0
    else:
        restarts, first_epoch = {"chosen": None, "val_loss": []}, 0
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings["early_stopping_patience"], restore_best_weights=True
    )
    history = _fit(
        model,
        train,
        validation.stopping,
        schedule,
        max(schedule[1], first_epoch + 1),
        initial_epoch=first_epoch,
        callbacks=[
            early_stopping,
            keras.callbacks.TensorBoard(log_dir=os.path.join(fn_args.model_run_dir, start.name), update_freq="epoch"),
        ],
    )
    scores = model.evaluate(validation.choosing, verbose=0, return_dict=True)
    return FittedCandidate(
        name=start.name,
        model=model,
        history=history.history,
        stopped_early=early_stopping.stopped_epoch > 0,
        first_epoch=first_epoch,
        restarts=restarts,
        start=start.why,
        val_loss=float(scores["loss"]),
        val_accuracy=float(scores["accuracy"]),
        schedule=schedule,
        seconds=time.monotonic() - started,
    )


def run_fn(fn_args):
    """TFX Trainer entry point: continue the latest blessed model's candidate (or its
    ensemble's members) from its weights when they fit, else fit every candidate from the
    best of several fresh starts; each with early stopping on the validation split, within
    an example budget; export the one best on that split, or the ensemble of those within
    noise of it when that is better still."""
    training = fn_args.custom_config
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train_examples = _examples(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    num_train = _count(train_examples)
    validation = Validation.halves(_examples(fn_args.eval_files, fn_args.data_accessor, tf_transform_output))

    category_sizes = _category_sizes(tf_transform_output)
    starts = plan_starts(fn_args.base_model, category_sizes, training)
    processes = []  # the trees fit in their own, beside the networks, and are built after them
    try:
        trees_fitted = {
            start.name: _start_trees(start, fn_args, category_sizes, training, train_examples, validation, processes=processes)
            for start in starts
            if start.name == candidates.TREES
        }
        networks = {
            start.name: _fit_candidate(start, fn_args, category_sizes, training, train_examples, num_train, validation)
            for start in starts
            if start.name not in trees_fitted
        }
        fitted = [trees_fitted[start.name]() if start.name in trees_fitted else networks[start.name] for start in starts]
    finally:
        for process in processes:
            process.stop()
    labels, predictions = validation_predictions(fitted, validation.choosing)
    averaged = ensemble(fitted, labels, predictions, category_sizes, training)
    scored = fitted + ([averaged] if averaged else [])
    if averaged:
        predictions[averaged.name] = averaged.valid_predictions
    exported, why = choose_export(scored, labels, predictions)
    chosen = refit(exported, category_sizes, training, train_examples, num_train, validation)
    _write_history(chosen, why, scored, fn_args.model_run_dir, num_train)

    save_served(chosen.model, tf_transform_output, fn_args.serving_model_dir)
    _save_warm_start(chosen, category_sizes, fn_args.serving_model_dir)


def _write_history(chosen: FittedCandidate, why: str, fitted, model_run_dir, num_train) -> None:
    """Keeps the chosen candidate's curves (from `first_epoch` + 1, after the restarts'
    warm-up epochs; an ensemble's best member's), its restored (best) epoch and restarts,
    every candidate's validation scores, and the step schedule for reports, as plain JSON."""
    val_loss = chosen.history["val_loss"]
    record = {
        "candidate": chosen.name,
        "why_exported": why,
        "candidates": [candidate.summary() for candidate in fitted],
        "first_epoch": chosen.first_epoch + 1,
        "epochs_run": chosen.first_epoch + len(val_loss),
        "best_epoch": chosen.first_epoch + int(min(range(len(val_loss)), key=val_loss.__getitem__)) + 1,
        "stopped_early": chosen.stopped_early,
        "restarts": chosen.restarts,
        "start": chosen.start,
        "train_examples": num_train,
        "steps_per_epoch": chosen.schedule[0],
        "unit": chosen.unit,
        "history": {name: [float(v) for v in values] for name, values in chosen.history.items()},
    }
    if chosen.members:
        record["members"] = [member.name for member in chosen.members]
        record["curves_of"] = choose(chosen.members).name
    if chosen.refit:
        record["refit"] = chosen.refit
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(record, f)

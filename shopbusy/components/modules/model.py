"""Trainer module: the article's dense network on Transform's features, and its export.

Keras 2 (tf_keras) is used on purpose: TFX 1.16's Transform layer and Evaluator expect it,
and TF 2.16 would otherwise pick Keras 3.
"""

import json
import math
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from shopbusy.components.modules import features  # noqa: E402
from shopbusy.components.modules.features import HISTORY_FILE, SERVING_OUTPUT_KEY  # noqa: E402

READ_BATCH_SIZE = 1024
SHUFFLE_BUFFER = 100_000
# Beside each exported model (ignored by serving): its weights and what they fit, so that
# the next run can start from them (the Trainer's base_model; see _warm_start).
WARM_START_DIR = os.path.join("assets.extra", "warm_start")
WARM_START_INPUTS = "inputs.json"
WARM_START_WEIGHTS = "weights"


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


def build_model(category_sizes: dict, training) -> keras.Model:
    """Dense 128-256-128 with dropout and a sigmoid output, as in the article."""
    inputs, encoded = {}, []
    for key in features.NUMERIC_FEATURE_KEYS:
        name = features.transformed_name(key)
        inputs[name] = keras.layers.Input(shape=(1,), name=name, dtype=tf.float32)
        encoded.append(inputs[name])
    for name, size in sorted(category_sizes.items()):
        inputs[name] = keras.layers.Input(shape=(1,), name=name, dtype=tf.int64)
        encoded.append(keras.layers.CategoryEncoding(num_tokens=size, output_mode="one_hot")(inputs[name]))
    x = keras.layers.concatenate(encoded)
    for units in (128, 256, 128):
        x = keras.layers.Dense(units, activation="relu")(x)
        x = keras.layers.Dropout(training["dropout"])(x)
    output = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=inputs, outputs=output)
    model.compile(
        optimizer=keras.optimizers.Adam(training["learning_rate"]),
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
    """Transformed (features, label) examples, read and parsed once, then served from memory."""
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
    return dataset.unbatch().cache()


def _count(examples) -> int:
    """Number of examples; the pass also fills the in-memory cache."""
    sizes = examples.batch(READ_BATCH_SIZE).map(lambda _, label: tf.shape(label, out_type=tf.int64)[0])
    return int(sizes.reduce(tf.constant(0, tf.int64), lambda total, size: total + size))


def _schedule(num_examples: int, training: dict):
    """Steps per epoch and epochs within the step budget.

    Small data trains in whole passes (the article's schedule, untouched); large data in
    epochs of at most `max_steps_per_epoch` steps, so early stopping looks often, and in at
    most `max_train_steps` steps overall, so a million rows train in minutes, not hours.
    """
    steps_per_epoch = min(math.ceil(num_examples / training["batch_size"]), training["max_steps_per_epoch"])
    epochs = max(1, min(training["epochs"], training["max_train_steps"] // steps_per_epoch))
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


def _fit(model, train, valid, schedule, epochs, initial_epoch=0, callbacks=()):
    steps_per_epoch, _ = schedule
    return model.fit(
        train,
        validation_data=valid,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        initial_epoch=initial_epoch,
        verbose=0,
        callbacks=list(callbacks),
    )


def _best_start(category_sizes, training, train, valid, schedule):
    """Trains `restarts` seeded initialisations for `restart_epochs` each and returns the one
    with the lowest validation loss, with every restart's loss: the article's "do multiple
    training runs and keep the best", made automatic so no seed is stuck in a bad minimum."""
    trials = []
    for restart in range(training["restarts"]):
        keras.utils.set_random_seed(training["seed"] * 1000 + restart)
        model = build_model(category_sizes, training)
        if training["restarts"] > 1:
            history = _fit(model, train, valid, schedule, training["restart_epochs"])
            trials.append((history.history["val_loss"][-1], restart, model))
        else:
            trials.append((None, restart, model))
    _, chosen, model = min(trials, key=lambda trial: (trial[0] or 0.0, trial[1]))
    return model, {"chosen": chosen, "val_loss": [loss for loss, _, _ in trials if loss is not None]}


def _model_inputs(category_sizes: dict) -> dict:
    """What a model's weights fit: its inputs and the one-hot width of each categorical one."""
    return {
        "numeric": sorted(features.transformed_name(k) for k in features.NUMERIC_FEATURE_KEYS),
        "categorical": dict(sorted(category_sizes.items())),
    }


def _warm_start(base_model, category_sizes: dict, training):
    """The base model rebuilt with its weights, when its inputs are those of this run;
    else None. Either way, a sentence saying which and why."""
    if not training.get("warm_start", True):
        return None, "cold start: --no-warm-start"
    # An empty base model is ServedModel's before the first push (components/served_baseline.py).
    if not base_model or not tf.io.gfile.exists(base_model):
        return None, "cold start: no blessed model yet"
    folder = os.path.join(base_model, WARM_START_DIR)
    inputs_path = os.path.join(folder, WARM_START_INPUTS)
    if not tf.io.gfile.exists(inputs_path):
        return None, f"cold start: the blessed model {base_model} has no warm-start weights"
    with tf.io.gfile.GFile(inputs_path) as f:
        base_inputs = json.load(f)
    wanted = _model_inputs(category_sizes)
    if base_inputs != wanted:
        changed = sorted(
            name
            for name in set(base_inputs["categorical"]) | set(wanted["categorical"])
            if base_inputs["categorical"].get(name) != wanted["categorical"].get(name)
        )
        why = f"vocabulary sizes changed ({', '.join(changed)})" if changed else "the model's inputs changed"
        return None, f"cold start: {why} since the blessed model"
    keras.utils.set_random_seed(training["seed"])
    model = build_model(category_sizes, training)
    model.load_weights(os.path.join(folder, WARM_START_WEIGHTS))
    return model, f"warm start from the blessed model {base_model}"


def _save_warm_start(model, category_sizes: dict, serving_model_dir: str) -> None:
    folder = os.path.join(serving_model_dir, WARM_START_DIR)
    tf.io.gfile.makedirs(folder)
    model.save_weights(os.path.join(folder, WARM_START_WEIGHTS))
    with tf.io.gfile.GFile(os.path.join(folder, WARM_START_INPUTS), "w") as f:
        json.dump(_model_inputs(category_sizes), f)


def run_fn(fn_args):
    """TFX Trainer entry point: start from the latest blessed model's weights when they fit
    (else pick the best of several fresh starts), fit with early stopping on the validation
    split, then export."""
    training = fn_args.custom_config
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train_examples = _examples(fn_args.train_files, fn_args.data_accessor, tf_transform_output)
    num_train = _count(train_examples)
    schedule = _schedule(num_train, training)
    train = (
        train_examples.shuffle(min(num_train, SHUFFLE_BUFFER), seed=training["seed"], reshuffle_each_iteration=True)
        .batch(training["batch_size"])
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    valid = _examples(fn_args.eval_files, fn_args.data_accessor, tf_transform_output).batch(READ_BATCH_SIZE)

    category_sizes = _category_sizes(tf_transform_output)
    model, warm_start = _warm_start(fn_args.base_model, category_sizes, training)
    if model is None:
        model, restarts = _best_start(category_sizes, training, train, valid, schedule)
        warm_epochs = training["restart_epochs"] if training["restarts"] > 1 else 0
    else:
        restarts, warm_epochs = {"chosen": None, "val_loss": []}, 0
    restarts["warm_start"] = warm_start
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=training["early_stopping_patience"], restore_best_weights=True
    )
    history = _fit(
        model,
        train,
        valid,
        schedule,
        max(schedule[1], warm_epochs + 1),
        initial_epoch=warm_epochs,
        callbacks=[early_stopping, keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
    )
    _write_history(history.history, early_stopping, fn_args.model_run_dir, warm_epochs, restarts, num_train, schedule)

    signatures = make_serving_signatures(model, tf_transform_output)
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures=signatures)
    _save_warm_start(model, category_sizes, fn_args.serving_model_dir)


def _write_history(history, early_stopping, model_run_dir, first_epoch, restarts, num_train, schedule) -> None:
    """Keeps the curves (from `first_epoch` + 1, after the restarts' warm-up epochs), the
    restored (best) epoch, the restarts and the step schedule for reports, as plain JSON."""
    val_loss = history["val_loss"]
    record = {
        "first_epoch": first_epoch + 1,
        "epochs_run": first_epoch + len(val_loss),
        "best_epoch": first_epoch + int(min(range(len(val_loss)), key=val_loss.__getitem__)) + 1,
        "stopped_early": early_stopping.stopped_epoch > 0,
        "restarts": restarts,
        "train_examples": num_train,
        "steps_per_epoch": schedule[0],
        "history": {name: [float(v) for v in values] for name, values in history.items()},
    }
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(record, f)

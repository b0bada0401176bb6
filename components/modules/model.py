"""Trainer module: the article's dense network on Transform's features, and its export.

Keras 2 (tf_keras) is used on purpose: TFX 1.16's Transform layer and Evaluator expect it,
and TF 2.16 would otherwise pick Keras 3.
"""

import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402
import tf_keras as keras  # noqa: E402
from tfx_bsl.public import tfxio  # noqa: E402

from components.modules import features  # noqa: E402

SERVING_OUTPUT_KEY = "outputs"  # busy probability in the serving signature
HISTORY_FILE = "history.json"  # per-epoch curves, beside the TensorBoard logs
READ_BATCH_SIZE = 1024


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


def _dataset(file_pattern, data_accessor, tf_transform_output, batch_size, shuffle_seed=None):
    """Transformed examples as (features, label) batches, read once and cached in memory.

    Reading and parsing happen in the first epoch only; with a seed, every epoch reshuffles.
    """
    label = features.transformed_name(features.LABEL_KEY)
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(batch_size=READ_BATCH_SIZE, label_key=label, num_epochs=1, shuffle=False),
        tf_transform_output.transformed_metadata.schema,
    )
    dataset = dataset.unbatch().cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(100_000, seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


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


def run_fn(fn_args):
    """TFX Trainer entry point: fit with early stopping on the validation split, then export."""
    training = fn_args.custom_config
    keras.utils.set_random_seed(training["seed"])
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = _dataset(
        fn_args.train_files, fn_args.data_accessor, tf_transform_output, training["batch_size"], training["seed"]
    )
    valid = _dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, READ_BATCH_SIZE)

    model = build_model(_category_sizes(tf_transform_output), training)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=training["early_stopping_patience"], restore_best_weights=True
    )
    history = model.fit(
        train,
        validation_data=valid,
        epochs=training["epochs"],
        verbose=0,
        callbacks=[early_stopping, keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
    )
    _write_history(history.history, early_stopping, fn_args.model_run_dir)

    signatures = make_serving_signatures(model, tf_transform_output)
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures=signatures)


def _write_history(history: dict, early_stopping, model_run_dir: str) -> None:
    """Keeps the curves and the restored (best) epoch for reports, as plain JSON."""
    val_loss = history["val_loss"]
    record = {
        "epochs_run": len(val_loss),
        "best_epoch": int(min(range(len(val_loss)), key=val_loss.__getitem__)) + 1,
        "stopped_early": early_stopping.stopped_epoch > 0,
        "history": {name: [float(v) for v in values] for name, values in history.items()},
    }
    tf.io.gfile.makedirs(model_run_dir)
    with tf.io.gfile.GFile(os.path.join(model_run_dir, HISTORY_FILE), "w") as f:
        json.dump(record, f)

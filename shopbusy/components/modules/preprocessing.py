"""Transform's preprocessing_fn: the feature engineering shared by training and serving.

The graph built here is attached to the exported model, so the served model takes the
raw columns and applies exactly these transformations.
"""

import tensorflow as tf
import tensorflow_transform as tft

from shopbusy.components.modules import features

OOV_BUCKETS = 1  # codes never seen in training (a new shop type) share one bucket


def preprocessing_fn(inputs):
    """Maps raw columns to model inputs: z-scores, vocabulary indices, 0-based fixed domains."""
    outputs = {}
    # Every numeric column's mean and variance in one elementwise analyzer rather than one
    # analyzer a column: the same z-scores (to float32 rounding, ~1e-7), with 3 analyzers in
    # all instead of 10. TFT's Beam graph, its cache entries and the stages that read and merge
    # them grow with the analyzers, and those stages, not the arithmetic, are Transform's
    # analysis time at these sizes: one span's analysis took 12.7 s instead of 19.1 s, a week
    # over 4 spans with last week's cache 16.5 s instead of 27.1 s (bench/notes.md, 12-03).
    numeric = tf.stack([tf.cast(inputs[key], tf.float32) for key in features.NUMERIC_FEATURE_KEYS], axis=-1)
    z_scores = tft.scale_to_z_score(numeric, elementwise=True)
    for index, key in enumerate(features.NUMERIC_FEATURE_KEYS):
        outputs[features.transformed_name(key)] = z_scores[..., index]
    for key in features.CATEGORICAL_FEATURE_KEYS:
        outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
            tf.strings.as_string(inputs[key]), num_oov_buckets=OOV_BUCKETS, vocab_filename=key
        )
    for key, (low, high) in features.FIXED_DOMAIN_FEATURES.items():
        outputs[features.transformed_name(key)] = tf.clip_by_value(inputs[key], low, high) - low
    outputs[features.transformed_name(features.LABEL_KEY)] = inputs[features.LABEL_KEY]
    return outputs

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
    for key in features.NUMERIC_FEATURE_KEYS:
        outputs[features.transformed_name(key)] = tft.scale_to_z_score(tf.cast(inputs[key], tf.float32))
    for key in features.CATEGORICAL_FEATURE_KEYS:
        outputs[features.transformed_name(key)] = tft.compute_and_apply_vocabulary(
            tf.strings.as_string(inputs[key]), num_oov_buckets=OOV_BUCKETS, vocab_filename=key
        )
    for key, (low, high) in features.FIXED_DOMAIN_FEATURES.items():
        outputs[features.transformed_name(key)] = tf.clip_by_value(inputs[key], low, high) - low
    outputs[features.transformed_name(features.LABEL_KEY)] = inputs[features.LABEL_KEY]
    return outputs

"""The "trees" candidate: gradient-boosted trees, fitted in the Trainer, served as plain TF ops.

Rules that hinge on cut-offs acting together, or on a category's own hours, are what
boosted trees read best (docs/benchmarks.md, "Model quality by rule"). The trees are
scikit-learn's HistGradientBoostingClassifier (already installed: TFX depends on
scikit-learn), fitted on Transform's outputs with the categorical columns as native
categories, the number of boosting iterations chosen on the validation split as the
networks' epochs are.

The fitted trees are then written into the Keras model as constant tables walked with
gathers (`TreeEnsemble`), not with TF-DF's custom ops: the SavedModel then loads in TFMA,
in `predict`, in the image and in any TF Serving without an extra library, and the
Transform layer stays inside it as for every other candidate. The walk follows
scikit-learn 1.5.1's own predictor, sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx
(`_predict_one_from_raw_data`): `x <= threshold` goes left, NaN goes the node's missing
side, a category goes left when its bit is set, and a category unknown to the fit goes the
missing side. The categories reach the trees through the estimator's OrdinalEncoder
(gradient_boosting.py, `_preprocess_X`), so each categorical node's table is indexed by the
Transform index and says left or right for every one. These are private structures of
scikit-learn; `tests/test_trees.py` checks the served output against `predict_proba`, so a
scikit-learn that changes them fails a test rather than serving other numbers.

Trees have no weights to continue: a warm start refits them on the run's data (they take
seconds), the rolling window of spans being the memory of earlier weeks.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from shopbusy.components.modules import features  # noqa: E402

# scikit-learn's defaults (a learning rate of 0.1, 31 leaves, 20 rows a leaf) but up to
# MAX_ITER iterations, of which the number with the lowest validation loss is kept.
MAX_ITER = 500
# scikit-learn bins every column into at most 255 values; a categorical column with more
# (a user's thousand shop types) is split on its index as a number instead.
MAX_CATEGORIES = 255


def _native(category_sizes: dict) -> list:
    """The categorical inputs the trees split as categories (the others by their index)."""
    return [name for name in sorted(category_sizes) if category_sizes[name] <= MAX_CATEGORIES]


def columns(category_sizes: dict) -> list:
    """The model inputs in the trees' column order: native categories first, as
    scikit-learn's preprocessor reorders them, so a tree's feature index is this order's."""
    native = _native(category_sizes)
    others = [name for name in sorted(category_sizes) if name not in native]
    return native + others + [features.transformed_name(key) for key in features.NUMERIC_FEATURE_KEYS]


def matrix(batches, category_sizes: dict):
    """(X, y) as float64 / int arrays from (features, label) batches of Transform's output."""
    names = columns(category_sizes)
    rows, labels = {name: [] for name in names}, []
    for inputs, label in batches:
        for name in names:
            rows[name].append(np.asarray(inputs[name], dtype=np.float64).reshape(-1))
        labels.append(np.asarray(label).reshape(-1))
    x = np.column_stack([np.concatenate(rows[name]) for name in names]) if labels else np.zeros((0, len(names)))
    return x, (np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64))


def log_losses(y, p):
    """Each row's log loss, clipped as Keras's BinaryCrossentropy clips it (the candidates'
    validation loss): the trees' curves here, the ensemble's paired test in model.py."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _classifier(category_sizes: dict, seed: int, iterations: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    native = _native(category_sizes)
    categorical = [name in native for name in columns(category_sizes)]
    return HistGradientBoostingClassifier(
        max_iter=iterations, early_stopping=False, categorical_features=categorical, random_state=seed
    )


def refit(x, y, category_sizes: dict, seed: int, iterations: int):
    """The classifier of `fit`'s settings with the number of iterations it chose, fitted on
    other rows (the training and validation rows together: model.refit)."""
    return _classifier(category_sizes, seed, iterations).fit(x, y)


def fit(x_train, y_train, x_valid, y_valid, category_sizes: dict, seed: int):
    """Fits up to MAX_ITER iterations and keeps the number with the lowest validation loss.
    Returns the classifier, that number, and per-iteration curves in the Keras history's keys."""
    classifier = _classifier(category_sizes, seed, MAX_ITER).fit(x_train, y_train)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    for key, x, y in (("", x_train, y_train), ("val_", x_valid, y_valid)):
        for p in classifier.staged_predict_proba(x):
            history[key + "loss"].append(float(np.mean(log_losses(y, p[:, 1]))))
            history[key + "accuracy"].append(float(np.mean((p[:, 1] > 0.5) == y)))
    iterations = int(np.argmin(history["val_loss"])) + 1
    return classifier, iterations, history


def tables(classifier, iterations: int, category_sizes: dict) -> dict:
    """The first `iterations` trees as padded [trees, nodes] arrays, and per categorical
    node whether each Transform index goes left ([trees, nodes, categories])."""
    names = columns(category_sizes)
    trees = [predictors[0] for predictors in classifier._predictors[:iterations]]
    width = max(len(tree.nodes) for tree in trees)
    categories = max([category_sizes[name] for name in names if name in category_sizes] + [1])
    shape = (len(trees), width)
    out = {
        "feature": np.zeros(shape, np.int32),
        "threshold": np.zeros(shape, np.float64),
        "missing_left": np.zeros(shape, bool),
        "left": np.zeros(shape, np.int32),
        "right": np.zeros(shape, np.int32),
        "leaf": np.ones(shape, bool),  # padding is a leaf of value 0, never reached
        "value": np.zeros(shape, np.float64),
        "categorical": np.zeros(shape, bool),
        "category_left": np.zeros(shape + (categories,), bool),
    }
    # The encoder maps each seen category to its rank among them; others are unknown.
    encoded = {}
    if classifier.is_categorical_ is not None:
        encoder = classifier._preprocessor.named_transformers_["encoder"]
        for column, seen in zip(np.flatnonzero(classifier.is_categorical_), encoder.categories_):
            lookup = np.full(categories, -1)
            for rank, category in enumerate(seen):
                if 0 <= int(category) < categories:
                    lookup[int(category)] = rank
            encoded[int(column)] = lookup
    for t, tree in enumerate(trees):
        nodes = tree.nodes
        n = len(nodes)
        out["feature"][t, :n] = nodes["feature_idx"]
        out["threshold"][t, :n] = nodes["num_threshold"]
        out["missing_left"][t, :n] = nodes["missing_go_to_left"].astype(bool)
        out["left"][t, :n] = nodes["left"]
        out["right"][t, :n] = nodes["right"]
        out["leaf"][t, :n] = nodes["is_leaf"].astype(bool)
        out["value"][t, :n] = nodes["value"]
        out["categorical"][t, :n] = nodes["is_categorical"].astype(bool)
        for i in np.flatnonzero(nodes["is_categorical"] & ~nodes["is_leaf"].astype(bool)):
            lookup = encoded[int(nodes["feature_idx"][i])]
            bitset = tree.raw_left_cat_bitsets[nodes["bitset_idx"][i]]
            in_left = np.array([rank >= 0 and bool((bitset[rank // 32] >> (rank % 32)) & 1) for rank in lookup])
            out["category_left"][t, i] = np.where(lookup >= 0, in_left, out["missing_left"][t, i])
    out["baseline"] = np.float64(np.ravel(classifier._baseline_prediction)[0])
    out["depth"] = int(max(int(tree.nodes["depth"].max()) for tree in trees))
    return out


class TreeEnsemble(keras.layers.Layer):
    """Walks every tree at once, one level per step, from the model inputs in `columns`
    order to the busy probability (sigmoid of the baseline plus the leaves' values)."""

    def __init__(self, tables: dict = None, depth: int = 0, baseline: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.baseline = depth, baseline
        self.tables = {
            name: self.add_weight(
                name=name,
                shape=value.shape,
                dtype=tf.as_dtype(value.dtype),
                initializer=keras.initializers.Constant(value),
                trainable=False,
            )
            for name, value in (tables or {}).items()
        }

    def call(self, inputs):
        x = tf.concat([tf.cast(tf.reshape(column, [-1, 1]), tf.float64) for column in inputs], axis=1)
        t = self.tables
        num_trees, width = t["feature"].shape
        categories = t["category_left"].shape[2]
        rows = tf.shape(x)[0]
        offsets = tf.range(num_trees, dtype=tf.int32) * width  # each tree's first node, flattened
        flat = {name: tf.reshape(value, [-1]) for name, value in t.items()}
        node = tf.zeros([rows, num_trees], tf.int32)
        for _ in range(self.depth):
            index = node + offsets
            value = tf.gather(x, tf.gather(flat["feature"], index), batch_dims=1)
            category = tf.clip_by_value(tf.cast(tf.where(tf.math.is_nan(value), tf.zeros_like(value), value), tf.int32), 0, categories - 1)
            left = tf.where(
                tf.gather(flat["categorical"], index),
                tf.gather(flat["category_left"], index * categories + category),
                tf.where(tf.math.is_nan(value), tf.gather(flat["missing_left"], index), value <= tf.gather(flat["threshold"], index)),
            )
            step = tf.where(left, tf.gather(flat["left"], index), tf.gather(flat["right"], index))
            node = tf.where(tf.gather(flat["leaf"], index), node, step)
        raw = self.baseline + tf.reduce_sum(tf.gather(flat["value"], node + offsets), axis=1, keepdims=True)
        return tf.cast(tf.sigmoid(raw), tf.float32)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "baseline": self.baseline}


def build(inputs: dict, category_sizes: dict, classifier, iterations: int) -> keras.Model:
    """The Keras model (Transform's outputs in, busy probability out) serving the trees."""
    trees = tables(classifier, iterations, category_sizes)
    depth, baseline = trees.pop("depth"), float(trees.pop("baseline"))
    layer = TreeEnsemble(trees, depth=depth, baseline=baseline, name="trees")
    return keras.Model(inputs=inputs, outputs=layer([inputs[name] for name in columns(category_sizes)]))

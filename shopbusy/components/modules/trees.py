"""The "trees" candidate: gradient-boosted trees, fitted in the Trainer, served as plain TF ops.

Rules that hinge on cut-offs acting together, or on a category's own hours, are what
boosted trees read best (docs/benchmarks.md, "Model quality by rule"). The trees are
scikit-learn's HistGradientBoostingClassifier (already installed: TFX depends on
scikit-learn), fitted on Transform's outputs with the categorical columns as native
categories: on small data chosen and fitted by cross-validation over the training and
validation rows (`cross_fit`), on large data with the number of boosting iterations chosen
on the validation split as the networks' epochs are (`fit`).

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

import dataclasses
import os
from typing import Optional

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from shopbusy.components.modules import features  # noqa: E402

# scikit-learn's defaults (a learning rate of 0.1, 20 rows a leaf) but up to MAX_ITER
# iterations, of which the number with the lowest validation loss is kept.
MAX_ITER = 500
# scikit-learn bins every column into at most 255 values; a categorical column with more
# (a user's thousand shop types) is split on its index as a number instead.
MAX_CATEGORIES = 255
# On small data the trees are fitted in FOLDS folds of the training and validation rows
# together, for each of SHAPES (most leaves a tree: scikit-learn's default, and small trees
# that need more iterations); the shape and number of iterations with the lowest
# out-of-fold loss are kept, and the fold models averaged (`cross_fit`). On large data one
# fit on the training rows, the validation rows choosing the iterations (`fit`).
FOLDS = 5
SHAPES = (31, 7)
CROSS_FIT_STEP = 50
CROSS_FIT_PATIENCE = 100
DEFAULT_LEAVES = SHAPES[0]


@dataclasses.dataclass
class FittedTrees:
    """What the trees candidate learned: one classifier or the fold models to average, the
    iterations kept, their shape, and per-iteration curves in the Keras history's keys."""

    classifiers: list
    iterations: int
    leaves: int
    history: dict
    rows: int  # the rows the served trees learned from
    folds: int = 1
    # The cross-fit's: each row's fold, and its probability from the fold model that did not see it.
    fold_of: Optional[np.ndarray] = None
    out_of_fold: Optional[np.ndarray] = None
    shape_losses: dict = dataclasses.field(default_factory=dict)  # leaves -> best out-of-fold loss


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


def _classifier(category_sizes: dict, seed: int, iterations: int, leaves: int = DEFAULT_LEAVES, warm_start: bool = False):
    from sklearn.ensemble import HistGradientBoostingClassifier

    native = _native(category_sizes)
    categorical = [name in native for name in columns(category_sizes)]
    return HistGradientBoostingClassifier(
        max_iter=iterations,
        max_leaf_nodes=leaves,
        early_stopping=False,
        categorical_features=categorical,
        random_state=seed,
        warm_start=warm_start,
    )


def _staged(classifier, x) -> np.ndarray:
    """[iterations, rows]: each row's busy probability after each boosting iteration (small
    data only: the cross-fit's held-out rows)."""
    return np.array([p[:, 1] for p in classifier.staged_predict_proba(x)])


def predict(fitted: FittedTrees, x) -> np.ndarray:
    """The served trees' busy probability for each row of `x`, in scikit-learn: each
    classifier cut at the kept iterations, the fold models averaged (what `build` serves)."""
    kept = []
    for classifier in fitted.classifiers:
        for iteration, probabilities in enumerate(classifier.staged_predict_proba(x), start=1):
            if iteration == min(fitted.iterations, classifier.n_iter_):
                kept.append(probabilities[:, 1])
                break
    return np.mean(kept, axis=0)


def _scores(probabilities: np.ndarray, y) -> tuple:
    """Mean log loss and accuracy of each row of [iterations, rows] probabilities."""
    return log_losses(y[None, :], probabilities).mean(axis=1), ((probabilities > 0.5) == y[None, :]).mean(axis=1)


def _curves(classifier, x, y) -> tuple:
    """Mean log loss and accuracy after each iteration, one iteration at a time (a million
    rows times 500 iterations would not fit in memory at once)."""
    loss, accuracy = [], []
    for p in classifier.staged_predict_proba(x):
        loss.append(float(np.mean(log_losses(y, p[:, 1]))))
        accuracy.append(float(np.mean((p[:, 1] > 0.5) == y)))
    return np.array(loss), np.array(accuracy)


def refit(x, y, category_sizes: dict, seed: int, fitted: FittedTrees) -> FittedTrees:
    """`fit`'s trees with the shape and number of iterations it chose, fitted on other rows
    (the training and validation rows together: model.refit)."""
    classifier = _classifier(category_sizes, seed, fitted.iterations, fitted.leaves).fit(x, y)
    return dataclasses.replace(fitted, classifiers=[classifier], rows=len(y))


def fit(x_train, y_train, x_valid, y_valid, category_sizes: dict, seed: int) -> FittedTrees:
    """Fits up to MAX_ITER iterations of scikit-learn's default shape on the training rows
    and keeps the number with the lowest validation loss."""
    classifier = _classifier(category_sizes, seed, MAX_ITER).fit(x_train, y_train)
    loss, accuracy = _curves(classifier, x_train, y_train)
    val_loss, val_accuracy = _curves(classifier, x_valid, y_valid)
    history = {"loss": loss.tolist(), "accuracy": accuracy.tolist(), "val_loss": val_loss.tolist(), "val_accuracy": val_accuracy.tolist()}
    return FittedTrees([classifier], int(np.argmin(val_loss)) + 1, DEFAULT_LEAVES, history, rows=len(y_train))


def cross_fit(x, y, category_sizes: dict, seed: int) -> FittedTrees:
    """The trees chosen and fitted by FOLDS-fold cross-validation over all of `x` (the
    training and validation rows together), for small data.

    A few hundred validation rows choose a number of iterations (and a shape) noisily, and
    once chosen the trees would rather learn from them too (the refit before this did).
    Here every row is held out once: the shape and the number of iterations are those with
    the lowest mean out-of-fold loss, and the served model averages the fold models'
    probabilities, each cut at that number, each having learned from four fifths of the
    rows. Measured outside TFX (seven rules, five draws each; bench/results/trees-refit.txt),
    this beat the single fit refitted on the same rows on every rule, and the benchmark's
    default-settings trees on 32 of 35 draws. Every row's out-of-fold
    probability is kept: the choice between candidates and the ensemble's test judge the
    trees by the validation rows' (which their fold never saw), not by the served model's,
    which has seen them."""
    fold_of = np.random.default_rng(seed).permutation(len(y)) % FOLDS
    best = None
    shape_losses = {}
    for leaves in SHAPES:
        classifiers = [_classifier(category_sizes, seed + fold, 0, leaves, warm_start=True) for fold in range(FOLDS)]
        # Grown CROSS_FIT_STEP iterations at a time (warm start), until the out-of-fold loss
        # has not improved for CROSS_FIT_PATIENCE iterations: most shapes stop at a few
        # hundred, well short of MAX_ITER.
        for grown in range(CROSS_FIT_STEP, MAX_ITER + 1, CROSS_FIT_STEP):
            held_out = np.zeros((grown, len(y)))
            for fold, classifier in enumerate(classifiers):
                learn, hold = fold_of != fold, fold_of == fold
                classifier.set_params(max_iter=grown).fit(x[learn], y[learn])
                held_out[:, hold] = _staged(classifier, x[hold])
            val_loss, val_accuracy = _scores(held_out, y)
            if np.argmin(val_loss) + 1 <= grown - CROSS_FIT_PATIENCE:
                break
        shape_losses[leaves] = float(val_loss.min())
        if best is None or val_loss.min() < best[0].min():
            best = (val_loss, val_accuracy, classifiers, held_out, leaves)
    val_loss, val_accuracy, classifiers, held_out, leaves = best
    iterations = int(np.argmin(val_loss)) + 1
    # The training curve: each fold model on the rows it learned from, averaged over folds.
    learned = [_curves(c, x[fold_of != fold], y[fold_of != fold]) for fold, c in enumerate(classifiers)]
    history = {
        "loss": np.mean([loss for loss, _ in learned], axis=0).tolist(),
        "accuracy": np.mean([accuracy for _, accuracy in learned], axis=0).tolist(),
        "val_loss": val_loss.tolist(),
        "val_accuracy": val_accuracy.tolist(),
    }
    return FittedTrees(
        classifiers,
        iterations,
        leaves,
        history,
        rows=len(y),
        folds=FOLDS,
        fold_of=fold_of,
        out_of_fold=held_out[iterations - 1],
        shape_losses=shape_losses,
    )


# Trees are walked in this many groups of similar depth, each for its own deepest tree's
# levels: 27-31 % less scoring time than walking every tree to the deepest one's depth
# (measured on a 255-tree export, bench/notes.md "Scoring the trees").
DEPTH_GROUPS = 4


def _node_tables(classifier, iterations: int, category_sizes: dict) -> list:
    """The first `iterations` trees, each as a list of nodes (scikit-learn's fields), with,
    for each categorical split, whether each Transform index goes left."""
    names = columns(category_sizes)
    # The encoder maps each seen category to its rank among them; others are unknown.
    encoded = {}
    if classifier.is_categorical_ is not None:
        encoder = classifier._preprocessor.named_transformers_["encoder"]
        for column, seen in zip(np.flatnonzero(classifier.is_categorical_), encoder.categories_):
            lookup = np.full(category_sizes[names[int(column)]], -1)
            for rank, category in enumerate(seen):
                if 0 <= int(category) < len(lookup):
                    lookup[int(category)] = rank
            encoded[int(column)] = lookup
    walked = []
    for predictors in classifier._predictors[:iterations]:
        tree = predictors[0]
        nodes = []
        for node in tree.nodes:
            entry = {
                "leaf": bool(node["is_leaf"]),
                "depth": int(node["depth"]),
                "value": float(node["value"]),
                "feature": int(node["feature_idx"]),
                "threshold": float(node["num_threshold"]),
                "missing_left": bool(node["missing_go_to_left"]),
                "left": int(node["left"]),
                "right": int(node["right"]),
                "category_left": None,
            }
            if node["is_categorical"] and not entry["leaf"]:
                lookup = encoded[entry["feature"]]
                bitset = tree.raw_left_cat_bitsets[node["bitset_idx"]]
                in_left = [rank >= 0 and bool((bitset[rank // 32] >> (rank % 32)) & 1) for rank in lookup]
                entry["category_left"] = np.where(lookup >= 0, in_left, entry["missing_left"])
            nodes.append(entry)
        walked.append(nodes)
    return walked


def tables(classifier, iterations: int, category_sizes: dict) -> dict:
    """The first `iterations` trees as flat lookup tables over binned inputs.

    Each input column is binned once: a number by how many of the column's thresholds
    (every numeric split on it, in any tree) lie below it, a category by its index, and a
    missing value in a bin of its own. Then every split, numeric or categorical, is one
    lookup: a node's row of `next` holds, for each bin of its column, where a row in that
    bin goes (a leaf holds itself), so one level of every tree costs three gathers (the
    node's column, the row's bin of it, the next node). This scores three to six times
    faster than comparing thresholds and categories node by node (bench/notes.md, "Scoring
    the trees"). Each node's row is as wide as its column has bins and starts where the
    previous node's ends, so the tables are as long as the nodes' bins, not nodes times the
    widest column."""
    names = columns(category_sizes)
    walked = _node_tables(classifier, iterations, category_sizes)
    native = set(_native(category_sizes))
    edges = []
    for j, name in enumerate(names):
        if name in native:  # index k in bin k; an index past the column's values in bin size
            edges.append(np.arange(category_sizes[name]) + 0.5)
        else:
            edges.append(np.unique([n["threshold"] for nodes in walked for n in nodes if not n["leaf"] and n["feature"] == j]))
    width = [len(e) + 2 for e in edges]  # the values' bins, then the missing bin
    narrowest = int(np.argmin(width))
    offsets, size = [], 0
    for nodes in walked:
        offsets.append([])
        for node in nodes:
            offsets[-1].append(size)
            size += width[narrowest if node["leaf"] else node["feature"]]
    out = {"feature": np.zeros(size, np.int32), "next": np.zeros(size, np.int32), "value": np.zeros(size, np.float64)}
    for nodes, offset in zip(walked, offsets):
        for i, node in enumerate(nodes):
            o = offset[i]
            if node["leaf"]:
                out["feature"][o], out["value"][o] = narrowest, node["value"]
                out["next"][o : o + width[narrowest]] = o
                continue
            j = node["feature"]
            if node["category_left"] is not None:
                goes_left = np.append(node["category_left"], node["missing_left"])  # past the values: unknown
            else:
                goes_left = np.arange(len(edges[j]) + 1) <= np.searchsorted(edges[j], node["threshold"])
            goes_left = np.append(goes_left, node["missing_left"])  # the missing bin
            out["feature"][o] = j
            out["next"][o : o + width[j]] = np.where(goes_left, offset[node["left"]], offset[node["right"]])
    padded = max(len(e) for e in edges) or 1
    out["edges"] = np.array([np.pad(e, (0, padded - len(e)), constant_values=np.inf) for e in edges]).reshape(len(names), padded)
    out["missing_bin"] = np.array(width, np.int32) - 1
    # Roots grouped by depth, shallow trees first; each group walked to its deepest tree's depth.
    depths = np.array([max(node["depth"] for node in nodes) for nodes in walked])  # scikit-learn's own
    order = np.argsort(depths, kind="stable")
    groups = [group for group in np.array_split(order, min(DEPTH_GROUPS, len(order))) if len(group)]
    out["roots"] = np.array([offsets[t][0] for group in groups for t in group], np.int32)
    out["group_sizes"] = [len(group) for group in groups]
    out["group_depths"] = [int(depths[group].max()) for group in groups]
    out["baseline"] = np.float64(np.ravel(classifier._baseline_prediction)[0])
    return out


class TreeEnsemble(keras.layers.Layer):
    """Walks every tree at once, one level per step, from the model inputs in `columns`
    order to the busy probability (sigmoid of the baseline plus the leaves' values)."""

    def __init__(self, tables: dict = None, group_sizes=(), group_depths=(), baseline: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.group_sizes, self.group_depths, self.baseline = list(group_sizes), list(group_depths), baseline
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
        t = self.tables
        x = tf.concat([tf.cast(tf.reshape(column, [1, -1]), tf.float64) for column in inputs], axis=0)  # [columns, rows]
        missing = tf.math.is_nan(x)
        bins = tf.searchsorted(t["edges"], tf.where(missing, tf.zeros_like(x), x), side="left", out_type=tf.int32)
        bins = tf.where(missing, tf.broadcast_to(t["missing_bin"][:, None], tf.shape(bins)), bins)
        columns, rows = tf.shape(x)[0], tf.shape(x)[1]
        # Row r's bin of column j at r * columns + j.
        flat_bins = tf.reshape(tf.transpose(bins), [-1])
        row_start = tf.range(rows)[:, None] * columns
        raw = tf.fill([rows], tf.constant(self.baseline, tf.float64))
        roots = tf.split(t["roots"], self.group_sizes) if self.group_sizes else []
        for group_roots, depth in zip(roots, self.group_depths):
            node = tf.broadcast_to(group_roots[None, :], [rows, tf.shape(group_roots)[0]])
            for _ in range(depth):
                node = tf.gather(t["next"], node + tf.gather(flat_bins, row_start + tf.gather(t["feature"], node)))
            raw += tf.reduce_sum(tf.gather(t["value"], node), axis=1)
        return tf.cast(tf.sigmoid(raw[:, None]), tf.float32)

    def get_config(self):
        return {**super().get_config(), "group_sizes": self.group_sizes, "group_depths": self.group_depths, "baseline": self.baseline}


def _layer(classifier, iterations: int, category_sizes: dict, name: str) -> TreeEnsemble:
    trees = tables(classifier, iterations, category_sizes)
    shape = {key: trees.pop(key) for key in ("group_sizes", "group_depths")}
    return TreeEnsemble(trees, baseline=float(trees.pop("baseline")), name=name, **shape)


def build(inputs: dict, category_sizes: dict, fitted: FittedTrees) -> keras.Model:
    """The Keras model (Transform's outputs in, busy probability out) serving the trees: the
    one classifier, or the mean of the fold models' probabilities."""
    ordered = [inputs[name] for name in columns(category_sizes)]
    if len(fitted.classifiers) == 1:
        return keras.Model(inputs=inputs, outputs=_layer(fitted.classifiers[0], fitted.iterations, category_sizes, "trees")(ordered))
    folds = [
        _layer(classifier, fitted.iterations, category_sizes, f"trees_fold_{fold}")(ordered)
        for fold, classifier in enumerate(fitted.classifiers)
    ]
    return keras.Model(inputs=inputs, outputs=keras.layers.Average(name="trees")(folds))

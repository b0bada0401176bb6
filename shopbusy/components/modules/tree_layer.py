"""The trees candidate's fitted trees (trees.py) served as plain TF ops in the Keras model.

The fitted trees are written into the Keras model as constant tables walked with
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
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from shopbusy.components.modules.trees import FittedTrees, columns, native_categories  # noqa: E402

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
    native = set(native_categories(category_sizes))
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

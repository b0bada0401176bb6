"""The "trees" candidate: gradient-boosted trees, fitted in the Trainer, served as plain TF ops.

Rules that hinge on cut-offs acting together, or on a category's own hours, are what
boosted trees read best (docs/benchmarks.md, "Model quality by rule"). The trees are
scikit-learn's HistGradientBoostingClassifier (already installed: TFX depends on
scikit-learn), fitted on Transform's outputs with the categorical columns as native
categories: on small data chosen and fitted by cross-validation over the training and
validation rows (`cross_fit`), on large data with the number of boosting iterations chosen
on the validation split as the networks' epochs are (`fit`).

The fitted trees are served as plain TF ops by tree_layer.py. This module holds no
TensorFlow: the Trainer fits the trees in a process of their own, beside the networks'
fits (`InProcess`), and that process starts in a second with scikit-learn alone.

Trees have no weights to continue: a warm start refits them on the run's data (they take
seconds), the rolling window of spans being the memory of earlier weeks.
"""

import dataclasses
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Optional

import numpy as np

from shopbusy.components.modules import features

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
    seconds: float = 0.0  # the fit's


def native_categories(category_sizes: dict) -> list:
    """The categorical inputs the trees split as categories (the others by their index)."""
    return [name for name in sorted(category_sizes) if category_sizes[name] <= MAX_CATEGORIES]


def columns(category_sizes: dict) -> list:
    """The model inputs in the trees' column order: native categories first, as
    scikit-learn's preprocessor reorders them, so a tree's feature index is this order's."""
    native = native_categories(category_sizes)
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

    native = native_categories(category_sizes)
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
    started = time.monotonic()
    classifier = _classifier(category_sizes, seed, MAX_ITER).fit(x_train, y_train)
    loss, accuracy = _curves(classifier, x_train, y_train)
    val_loss, val_accuracy = _curves(classifier, x_valid, y_valid)
    history = {"loss": loss.tolist(), "accuracy": accuracy.tolist(), "val_loss": val_loss.tolist(), "val_accuracy": val_accuracy.tolist()}
    iterations = int(np.argmin(val_loss)) + 1
    return FittedTrees([classifier], iterations, DEFAULT_LEAVES, history, rows=len(y_train), seconds=time.monotonic() - started)


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
    started = time.monotonic()
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
        seconds=time.monotonic() - started,
    )


class InProcess:
    """`cross_fit` or `fit` run in a Python process of its own, beside the Trainer's networks.

    The networks' fits keep about one of the Trainer's two cores busy: small steps one
    after another, each taking Python's GIL. Fitted in a thread beside them, the trees took
    three times as long and slowed the networks, as scikit-learn's boosting loop needs the
    GIL too; in a process of their own they use the idle core (bench/notes.md, "The trees
    beside the networks"). The process starts Python afresh (a fork of a process running
    TensorFlow's threads is not safe) and imports this module alone, which does not import
    TensorFlow. multiprocessing's spawn (and ProcessPoolExecutor over it) is not used: its
    worker first re-imports the parent's main module (Python 3.10, multiprocessing/spawn.py,
    `_fixup_main_from_path`), which is whatever runs the pipeline (the CLI, TFX's container
    entrypoint, a user's script), and a script without a `__main__` guard left the pool
    waiting forever. The job and the fitted trees go through files (pickles) in a temporary
    folder. OpenMP gets one thread, the other core being the networks'; the trees are the
    same whatever the threads (scikit-learn computes its histograms and splits per column).
    """

    def __init__(self, function, *args):
        self._folder = tempfile.mkdtemp(prefix="shopbusy-trees-")
        with open(os.path.join(self._folder, "job.pickle"), "wb") as job:
            pickle.dump((function.__name__, args), job)
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path), "OMP_NUM_THREADS": "1"}
        code = "import sys; from shopbusy.components.modules import trees; trees._run_job(sys.argv[1])"
        self._process = subprocess.Popen([sys.executable, "-c", code, self._folder], env=environment)

    def result(self) -> FittedTrees:
        """Waits for the fitted trees; a failed fit raises (its traceback is on stderr)."""
        try:
            if self._process.wait() != 0:
                raise RuntimeError(f"the trees' fit failed in process {self._process.pid} (exit code {self._process.returncode}); its error is above")
            with open(os.path.join(self._folder, "fitted.pickle"), "rb") as fitted:
                return pickle.load(fitted)
        finally:
            self.stop()

    def stop(self) -> None:
        """Ends the process if it still runs (the Trainer failed before it waited for it)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


def _run_job(folder: str) -> None:
    """InProcess's other side: runs the job in `folder` and leaves the fitted trees beside it."""
    with open(os.path.join(folder, "job.pickle"), "rb") as job:
        function, args = pickle.load(job)
    fitted = {"cross_fit": cross_fit, "fit": fit}[function](*args)
    with open(os.path.join(folder, "fitted.pickle"), "wb") as out:
        pickle.dump(fitted, out)

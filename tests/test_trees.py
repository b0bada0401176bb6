"""The trees candidate: scikit-learn's boosted trees served as plain TF ops, output for output."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from shopbusy.components.modules import features, tree_layer, trees
from shopbusy.components.modules.model import _inputs

xf = features.transformed_name
# shop_location has fewer values in training than its size: index 5 is never seen.
SIZES = {xf("shop_type"): 9, xf("shop_location"): 6, xf("weekday"): 7, xf("hour"): 24}


def _sample(n, rng, unseen_location=False):
    data = {xf(k): rng.normal(size=n) for k in features.NUMERIC_FEATURE_KEYS}
    data[xf("shop_type")] = rng.integers(0, 9, n)
    data[xf("shop_location")] = rng.integers(0, 6 if unseen_location else 5, n)
    data[xf("weekday")] = rng.integers(0, 7, n)
    data[xf("hour")] = rng.integers(0, 24, n)
    if n:
        data[xf("avgTime")][0] = np.nan  # a missing measurement takes the node's missing side
    # Cut-offs that act together, and each location its own hours.
    logit = 5.0 * ((data[xf("avgTime")] > 0.3) == (data[xf("avgDistance")] < -0.2)) - 3.0
    logit += np.where(np.isin(data[xf("shop_location")], [0, 3]), data[xf("hour")] > 16, data[xf("hour")] < 13) * 3.0
    logit += np.isin(data[xf("shop_type")], [2, 4, 7]) * 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-np.nan_to_num(logit)))).astype(np.int64)
    return data, y


def _x(data, sizes=SIZES):
    return np.column_stack([np.asarray(data[name], np.float64) for name in trees.columns(sizes)])


def _fitted(sizes=SIZES):
    rng = np.random.default_rng(0)
    (train, y_train), (valid, y_valid) = _sample(3000, rng), _sample(600, rng)
    fitted = trees.fit(_x(train, sizes), y_train, _x(valid, sizes), y_valid, sizes, seed=0)
    return fitted.classifiers[0], fitted.iterations, fitted.history, (valid, y_valid)


def _keras_inputs(data):
    return {name: np.asarray(value).reshape(-1, 1).astype(np.float32 if name not in SIZES else np.int64) for name, value in data.items()}


def _served_and_expected(sizes):
    """The Keras model's output and scikit-learn's, on rows the fit never saw (an unseen
    location among them, and a missing measurement)."""
    classifier, iterations, history, (valid, y_valid) = _fitted(sizes)
    model = tree_layer.build(_inputs(sizes), sizes, trees.FittedTrees([classifier], iterations, trees.DEFAULT_LEAVES, history, rows=3000))
    test, _ = _sample(2000, np.random.default_rng(1), unseen_location=True)
    expected = list(classifier.staged_predict_proba(_x(test, sizes)))[iterations - 1][:, 1]
    served = model.predict(_keras_inputs(test), batch_size=512, verbose=0)[:, 0]
    return model, test, served, expected, iterations, history


def test_the_served_trees_compute_what_scikit_learn_computes(tmp_path):
    model, test, served, expected, iterations, history = _served_and_expected(SIZES)
    assert 1 <= iterations <= trees.MAX_ITER
    assert history["val_loss"][iterations - 1] == min(history["val_loss"])  # the kept number is the best on validation
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    assert np.mean((served > 0.5) == (expected > 0.5)) == 1.0
    # The trees are walked in groups of different depths (what the sample's fit gives).
    assert len(set(model.get_layer("trees").group_depths)) > 1

    # The SavedModel, loaded with nothing of this project imported, computes the same.
    tf.saved_model.save(model, str(tmp_path / "model"))
    np.save(tmp_path / "inputs.npy", _keras_inputs(test), allow_pickle=True)
    script = (
        "import numpy as np, tensorflow as tf, sys\n"
        "inputs = np.load(sys.argv[1] + '/inputs.npy', allow_pickle=True).item()\n"
        "model = tf.saved_model.load(sys.argv[1] + '/model')\n"
        "out = model.signatures['serving_default'](**{k: tf.constant(v) for k, v in inputs.items()})\n"
        "np.save(sys.argv[1] + '/served.npy', list(out.values())[0].numpy()[:, 0])\n"
        "import os; os._exit(0)\n"  # past TensorFlow's occasional abort at exit (entrypoint.leave)
    )
    env = dict(os.environ, PYTHONPATH="")  # not even shopbusy on the path
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=str(tmp_path), env=env)
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), expected, rtol=1e-5, atol=1e-6)


def test_trees_read_cut_offs_that_act_together():
    from sklearn.linear_model import LogisticRegression

    classifier, iterations, history, (valid, y_valid) = _fitted()
    rng = np.random.default_rng(0)
    train, y_train = _sample(3000, rng)
    linear = LogisticRegression(max_iter=1000).fit(np.nan_to_num(_x(train)), y_train)
    linear_accuracy = linear.score(np.nan_to_num(_x(valid)), y_valid)
    assert history["val_accuracy"][iterations - 1] > linear_accuracy + 0.05


def test_a_categorical_column_with_too_many_values_is_split_as_a_number():
    sizes = dict(SIZES, **{xf("shop_type"): trees.MAX_CATEGORIES + 1})
    order = trees.columns(sizes)
    assert order[:3] == sorted(set(SIZES) - {xf("shop_type")}) and order[3] == xf("shop_type")
    # Served as scikit-learn splits it: on the index's thresholds.
    _, _, served, expected, _, _ = _served_and_expected(sizes)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)


def _trainer_inputs():
    """Training examples and the validation halves as the Trainer reads them, and the raw
    samples (the validation sample in the halves' order: stopping rows, then choosing rows)."""
    from shopbusy.components.modules.model import Validation

    rng = np.random.default_rng(0)
    (train, y_train), (valid, y_valid) = _sample(3000, rng), _sample(600, rng)
    as_examples = lambda data, y: tf.data.Dataset.from_tensor_slices((_keras_inputs(data), y.reshape(-1, 1)))  # noqa: E731
    validation = Validation.halves(as_examples(valid, y_valid))
    order = np.concatenate([np.arange(0, 600, 2), np.arange(1, 600, 2)])
    valid, y_valid = {name: np.asarray(value)[order] for name, value in valid.items()}, y_valid[order]
    return as_examples(train, y_train), validation, (train, y_train), (valid, y_valid)


def test_on_small_data_the_trees_are_chosen_and_fitted_by_cross_validation_over_train_and_valid(tmp_path, monkeypatch):
    import dataclasses
    import types

    from shopbusy.components.modules import model as trainer
    from shopbusy.pipeline import config

    train_examples, validation, (train, y_train), (valid, y_valid) = _trainer_inputs()
    training = config.Training(seed=3).as_custom_config()
    assert 3600 <= training["trees_cross_fit_rows"]
    start = trainer.Start("trees", 0, None, "cold start: test")
    fitted = trainer._fit_trees(start, types.SimpleNamespace(model_run_dir=str(tmp_path)), SIZES, training, train_examples, validation)
    learned = fitted.tree_fit
    assert learned.folds == trees.FOLDS == len(learned.classifiers) and learned.rows == 3600
    # The shape and the number of iterations are those with the lowest out-of-fold loss.
    assert learned.shape_losses[learned.leaves] == min(learned.shape_losses.values()) and set(learned.shape_losses) == set(trees.SHAPES)
    assert learned.history["val_loss"][learned.iterations - 1] == min(learned.history["val_loss"])
    assert all(c.max_leaf_nodes == learned.leaves for c in learned.classifiers)

    # Every row's out-of-fold probability comes from the one fold model that never saw it.
    x = np.vstack([_x(train), _x(valid)])
    y = np.concatenate([y_train, y_valid])
    at_kept = np.array([list(c.staged_predict_proba(x))[learned.iterations - 1][:, 1] for c in learned.classifiers])
    np.testing.assert_allclose(learned.out_of_fold, at_kept[learned.fold_of, np.arange(len(y))])
    for fold, classifier in enumerate(learned.classifiers):
        refitted_on_its_rows = trees._classifier(SIZES, 3 + fold, classifier.n_iter_, learned.leaves).fit(x[learned.fold_of != fold], y[learned.fold_of != fold])
        np.testing.assert_allclose(refitted_on_its_rows.predict_proba(x)[:, 1], classifier.predict_proba(x)[:, 1])
    # The candidate is judged by the choosing rows' out-of-fold probabilities ...
    oof_valid, y_choosing = learned.out_of_fold[3300:], y_valid[300:]
    np.testing.assert_allclose(fitted.valid_predictions, oof_valid)
    assert abs(fitted.val_loss - np.mean(trees.log_losses(y_choosing, oof_valid))) < 1e-9
    # ... and serves the mean of the fold models' probabilities, cut at the kept iterations.
    test, _ = _sample(1000, np.random.default_rng(1), unseen_location=True)
    expected = np.mean([list(c.staged_predict_proba(_x(test)))[learned.iterations - 1][:, 1] for c in learned.classifiers], axis=0)
    served = fitted.model.predict(_keras_inputs(test), verbose=0)[:, 0]
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)

    # Nothing left to refit: the record says what the served trees learned from.
    recorded = trainer.refit(fitted, SIZES, training, train_examples, 3000, validation)
    assert recorded.model is fitted.model and recorded.val_loss == fitted.val_loss
    assert recorded.refit["rows"] == 3600 and recorded.refit["folds"] == trees.FOLDS and recorded.refit["leaves"] == learned.leaves
    assert recorded.refit["val_loss_seen"] < fitted.val_loss  # it has seen the validation rows
    seen = recorded.model.evaluate(validation.choosing, verbose=0, return_dict=True)  # what the served trees score there
    assert abs(recorded.refit["val_loss_seen"] - seen["loss"]) < 1e-6 and abs(recorded.refit["val_accuracy_seen"] - seen["accuracy"]) < 1e-6

    # An ensemble with the trees is judged on the same out-of-fold probabilities (both members
    # let in, whatever the paired test says of an untrained network).
    network = dataclasses.replace(fitted, name="linear", model=trainer.build_model(SIZES, training, "linear"), tree_fit=None, valid_predictions=None)
    network_valid = network.model.predict(validation.choosing, verbose=0)[:, 0]
    monkeypatch.setattr(trainer, "within_noise", lambda fitted, labels, predictions: list(fitted))
    labels, predictions = trainer.validation_predictions([network, fitted], validation.choosing)
    averaged = trainer.ensemble([network, fitted], labels, predictions, SIZES, training)
    assert averaged.model is None  # built once exported (`refit`)
    expected_average = (network_valid + oof_valid) / 2
    np.testing.assert_allclose(averaged.valid_predictions, expected_average, rtol=1e-6)
    assert abs(averaged.val_loss - np.mean(trees.log_losses(y_choosing, expected_average))) < 1e-9
    assert averaged.val_accuracy == np.mean((expected_average > 0.5) == y_choosing)


def test_the_chosen_trees_are_refitted_on_train_and_valid_with_the_iterations_valid_chose(tmp_path):
    """On large data (here: the cross-fit's row limit set below these rows)."""
    import dataclasses
    import types

    from shopbusy.components.modules import model as trainer
    from shopbusy.pipeline import config

    train_examples, validation, (train, y_train), (valid, y_valid) = _trainer_inputs()
    training = dict(config.Training(seed=3).as_custom_config(), trees_cross_fit_rows=3000)
    start = trainer.Start("trees", 0, None, "cold start: test")
    fitted = trainer._fit_trees(start, types.SimpleNamespace(model_run_dir=str(tmp_path)), SIZES, training, train_examples, validation)
    assert fitted.tree_fit.folds == 1 and fitted.valid_predictions is None
    iterations = int(np.argmin(fitted.history["val_loss"])) + 1

    refitted = trainer.refit(fitted, SIZES, training, train_examples, 3000, validation)
    assert refitted.refit["rows"] == 3600 and refitted.refit["iterations"] == iterations and refitted.refit["folds"] == 1
    expected = trees.refit(np.vstack([_x(train), _x(valid)]), np.concatenate([y_train, y_valid]), SIZES, 3, fitted.tree_fit).classifiers[0]
    assert expected.n_iter_ == iterations
    test, _ = _sample(1000, np.random.default_rng(1))
    served = refitted.model.predict(_keras_inputs(test), verbose=0)[:, 0]
    np.testing.assert_allclose(served, expected.predict_proba(_x(test))[:, 1], rtol=1e-5, atol=1e-6)
    # The choice's figures stay; the refitted model's on the rows it has now seen are beside them.
    assert refitted.val_loss == fitted.val_loss
    seen = refitted.model.evaluate(validation.choosing, verbose=0, return_dict=True)
    assert abs(refitted.refit["val_loss_seen"] - seen["loss"]) < 1e-6 and refitted.refit["val_loss_seen"] < fitted.val_loss

    # In an ensemble the trees member is refitted and the others kept as they are.
    network = dataclasses.replace(fitted, name="linear", model=trainer.build_model(SIZES, training, "linear"))
    averaged = dataclasses.replace(fitted, name="ensemble", model=None, members=(network, fitted))
    refitted_ensemble = trainer.refit(averaged, SIZES, training, train_examples, 3000, validation)
    assert [m.name for m in refitted_ensemble.members] == ["linear", "trees"]
    assert refitted_ensemble.members[0] is network
    expected_average = (network.model.predict(_keras_inputs(test), verbose=0)[:, 0] + served) / 2
    np.testing.assert_allclose(refitted_ensemble.model.predict(_keras_inputs(test), verbose=0)[:, 0], expected_average, rtol=1e-5, atol=1e-6)

    seen = refitted_ensemble.model.evaluate(validation.choosing, verbose=0, return_dict=True)
    assert abs(refitted_ensemble.refit["val_loss_seen"] - seen["loss"]) < 1e-6

    # Nothing to refit: a model without trees, or training rows that fill the budget alone.
    assert trainer.refit(network, SIZES, training, train_examples, 3000, validation) is network
    assert trainer.refit(fitted, SIZES, dict(training, max_train_examples=3000), train_examples, 3000, validation) is fitted
    # An exported ensemble gets its served average there, trees or not (`ensemble` leaves it unbuilt).
    other = dataclasses.replace(network, name="crossed", model=trainer.build_model(SIZES, training, "crossed"))
    for members, budget in (((network, other), training["max_train_examples"]), ((network, fitted), 3000)):
        unbuilt = dataclasses.replace(fitted, name="ensemble", model=None, members=members)
        served_ensemble = trainer.refit(unbuilt, SIZES, dict(training, max_train_examples=budget), train_examples, 3000, validation)
        expected_average = np.mean([m.model.predict(_keras_inputs(test), verbose=0)[:, 0] for m in members], axis=0)
        np.testing.assert_allclose(served_ensemble.model.predict(_keras_inputs(test), verbose=0)[:, 0], expected_average, rtol=1e-5, atol=1e-6)


def _rows(n, seed):
    data, y = _sample(n, np.random.default_rng(seed))
    return _x(data), y


def test_the_trees_fitted_in_a_process_of_their_own_are_those_fitted_here():
    """The Trainer fits the trees in another process, beside the networks (trees.InProcess):
    the fit that comes back is the one this process would have made, to the probability."""
    x, y = _rows(2000, 1)
    here = trees.cross_fit(x, y, SIZES, seed=3)
    there = trees.InProcess(trees.cross_fit, x, y, SIZES, 3).result()
    assert (there.iterations, there.leaves, there.shape_losses) == (here.iterations, here.leaves, here.shape_losses)
    np.testing.assert_array_equal(there.out_of_fold, here.out_of_fold)
    x_new, _ = _rows(500, 2)
    np.testing.assert_array_equal(trees.predict(there, x_new), trees.predict(here, x_new))


def test_that_process_holds_scikit_learn_alone():
    """It starts in a second because trees.py does not import TensorFlow."""
    code = "import sys; from shopbusy.components.modules import trees; print(sorted(m for m in ('tensorflow', 'tf_keras') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_failed_fit_in_its_process_raises_and_a_stopped_one_ends():
    x, y = _rows(300, 1)
    failing = trees.InProcess(trees.fit, x, y, x[:, :2], y, SIZES, 0)  # validation rows of the wrong width
    try:
        failing.result()
        raise AssertionError("the fit should have failed")
    except RuntimeError as error:
        assert "the trees' fit failed" in str(error)
    assert not os.path.exists(failing._folder)
    # A Trainer that fails while the trees fit stops their process (run_fn's `finally`).
    running = trees.InProcess(trees.cross_fit, *_rows(20_000, 4), SIZES, 0)
    running.stop()
    assert running._process.poll() is not None and not os.path.exists(running._folder)

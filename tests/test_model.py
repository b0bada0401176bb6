"""The candidate models, built on Transform's outputs, and how the Trainer chooses and starts them."""

import json
import types

import numpy as np
import tf_keras as keras

from shopbusy.components.modules import features
from shopbusy.components.modules.model import build_model
from shopbusy.pipeline import config

xf = features.transformed_name
SIZES = {xf("shop_type"): 21, xf("shop_location"): 21, xf("weekday"): 7, xf("hour"): 24}


def test_architecture_is_dense_128_256_128_with_dropout_and_sigmoid():
    model = build_model(SIZES, config.Training().as_custom_config())
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [128, 256, 128, 1]
    assert dense[-1].activation.__name__ == "sigmoid"
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 3
    one_hot_width = sum(SIZES.values()) + len(features.NUMERIC_FEATURE_KEYS)
    assert dense[0].kernel.shape == (one_hot_width, 128)
    # The article's 67,841 parameters on 13 raw inputs, plus 128 per extra one-hot input.
    assert model.count_params() == 67_841 + 128 * (one_hot_width - 13)


def test_model_learns_a_separable_rule_and_outputs_probabilities():
    training = config.Training(epochs=5, seed=1).as_custom_config()
    keras.utils.set_random_seed(1)
    model = build_model(SIZES, training)
    rng = np.random.default_rng(0)
    n = 2000
    inputs = {xf(k): rng.normal(size=(n, 1)).astype("float32") for k in features.NUMERIC_FEATURE_KEYS}
    inputs.update({name: rng.integers(0, size, (n, 1)) for name, size in SIZES.items()})
    labels = (inputs[xf("avgTime")][:, 0] + (inputs[xf("hour")][:, 0] > 11) > 0.5).astype("float32")
    model.fit(inputs, labels, epochs=training["epochs"], batch_size=32, verbose=0)
    predictions = model.predict(inputs, verbose=0)[:, 0]
    assert predictions.min() >= 0 and predictions.max() <= 1
    assert np.mean((predictions > 0.5) == labels) > 0.9


def test_small_data_trains_in_whole_passes_and_large_data_within_an_example_budget():
    from shopbusy.components.modules.model import CANDIDATES, _schedule

    training = config.Training().as_custom_config()
    assert _schedule(2_800, training) == (88, training["epochs"])  # the article's schedule
    linear = CANDIDATES["linear"].settings(training)
    assert _schedule(2_800, linear) == (11, training["epochs"])
    for settings in (training, linear):
        steps_per_epoch, epochs = _schedule(500_000, settings)
        assert steps_per_epoch == training["max_steps_per_epoch"]
        examples = steps_per_epoch * epochs * settings["batch_size"]
        assert training["max_train_examples"] / 2 < examples <= training["max_train_examples"]
    assert _schedule(10, training) == (1, training["epochs"])


def _datasets(n: int, busy_when_positive: str, seed: int):
    """Random model inputs, busy when one numeric column is above 0: the training rows in
    batches of 32, repeated, and the same rows as one validation batch."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    inputs = {xf(k): rng.normal(size=(n, 1)).astype("float32") for k in features.NUMERIC_FEATURE_KEYS}
    inputs.update({name: rng.integers(0, size, (n, 1)) for name, size in SIZES.items()})
    labels = (inputs[xf(busy_when_positive)][:, 0] > 0).astype("float32")
    rows = tf.data.Dataset.from_tensor_slices((inputs, labels))
    return rows.batch(32).repeat(), rows.batch(1024)


def test_restarts_continue_from_the_start_with_the_lowest_validation_loss():
    from shopbusy.components.modules.model import _best_start

    n = 512
    train, valid = _datasets(n, "avgRating", seed=3)
    training = config.Training(restarts=4, seed=2).as_custom_config()

    model, restarts = _best_start("dense", 0, SIZES, training, train, valid, (n // 32, 1))
    losses = restarts["val_loss"]
    assert len(losses) == 4 and len(set(losses)) == 4  # differently seeded starts
    assert restarts["chosen"] == int(np.argmin(losses))
    chosen_loss = model.evaluate(valid, verbose=0)[0]
    assert abs(chosen_loss - min(losses)) < 1e-4  # the very model that scored best

    single, none_tried = _best_start(
        "dense", 0, SIZES, config.Training(restarts=1).as_custom_config(), train, valid, (n // 32, 1)
    )
    assert none_tried == {"chosen": 0, "val_loss": []} and not single.history  # not trained yet


def test_a_fit_traces_keras_train_step_once_and_trains_the_same_weights():
    """_fit makes Adam's slots before the first step, so the train step is traced once, not
    twice; the weights are those of Keras's own fit, bit for bit, dropout included."""
    from shopbusy.components.modules.model import _fit

    n = 256
    train, valid = _datasets(n, "avgTime", seed=5)
    training = config.Training(seed=4).as_custom_config()
    trained = []
    for fit in (_fit, lambda model, *args: model.fit(train, validation_data=valid, steps_per_epoch=n // 32, epochs=2, verbose=0)):
        keras.utils.set_random_seed(4)
        model = build_model(SIZES, training, "dense")
        fit(model, train, valid, (n // 32, 2), 2)
        trained.append(model)
    assert trained[0].train_function.experimental_get_tracing_count() == 1
    assert trained[1].train_function.experimental_get_tracing_count() == 2  # what it saves
    for ours, keras_own in zip(trained[0].get_weights(), trained[1].get_weights()):
        np.testing.assert_array_equal(ours, keras_own)


def _warm_start(base_model, sizes, training, candidate):
    """How `candidate` alone would start (plan_starts with it the only candidate): its model, why."""
    from shopbusy.components.modules import model as module

    [start] = module.plan_starts(base_model, sizes, dict(training, candidates=[candidate]))
    return start.model, start.why


def test_warm_start_loads_the_blessed_weights_only_when_the_inputs_match(tmp_path):
    from shopbusy.components.modules import model as module

    training = config.Training(seed=1, warm_start=True).as_custom_config()
    keras.utils.set_random_seed(3)
    blessed = build_model(SIZES, training)
    module._save_warm_start(_exported("dense", blessed), SIZES, str(tmp_path))

    warm, why = _warm_start(str(tmp_path), SIZES, training, "dense")
    assert why == f"warm start from the blessed model {tmp_path}"
    for loaded, saved in zip(warm.get_weights(), blessed.get_weights()):
        np.testing.assert_array_equal(loaded, saved)

    grown = dict(SIZES, **{xf("shop_type"): 25})  # a new shop type's vocabulary entry
    assert _warm_start(str(tmp_path), grown, training, "dense") == (
        None,
        f"cold start: vocabulary sizes changed ({xf('shop_type')}) since the blessed model",
    )
    assert _warm_start(None, SIZES, training, "dense") == (None, "cold start: no blessed model yet")
    # ServedModel's empty output before the first push (open-source Kubeflow): no model there.
    assert _warm_start(str(tmp_path / "elsewhere"), SIZES, training, "dense") == (None, "cold start: no blessed model yet")
    (tmp_path / "without_weights").mkdir()
    assert _warm_start(str(tmp_path / "without_weights"), SIZES, training, "dense")[1].endswith("has no warm-start weights")
    off = dict(training, warm_start=False)
    assert _warm_start(str(tmp_path), SIZES, off, "dense") == (None, "cold start: --no-warm-start")
    # Another candidate's weights do not fit this one; a model from before the candidates is dense.
    assert _warm_start(str(tmp_path), SIZES, training, "linear") == (
        None,
        "cold start: the blessed model is the dense candidate",
    )
    inputs_path = tmp_path / module.WARM_START_DIR / module.WARM_START_INPUTS
    legacy = json.loads(inputs_path.read_text())
    del legacy["candidate"]
    inputs_path.write_text(json.dumps(legacy))
    assert _warm_start(str(tmp_path), SIZES, training, "dense")[1].startswith("warm start")


def _exported(name, model=None, members=()):
    """What run_fn exports, as _save_warm_start reads it."""
    return types.SimpleNamespace(name=name, model=model, members=tuple(members))


def test_every_candidate_name_has_a_model():
    from shopbusy.components.modules import candidates
    from shopbusy.components.modules import model as module

    # A name without a model fails here, not mid-run; the trees are fitted by trees.py.
    assert set(module.CANDIDATES) | {candidates.TREES} == set(config.CANDIDATES)


def test_an_ensemble_continues_its_networks_from_their_weights_and_refits_its_trees(tmp_path):
    from shopbusy.components.modules import model as module

    training = config.Training(seed=1, warm_start=True).as_custom_config()
    keras.utils.set_random_seed(4)
    dense = build_model(SIZES, training, "dense")
    members = [_exported("dense", dense), _exported("trees")]
    module._save_warm_start(_exported("ensemble", members=members), SIZES, str(tmp_path))

    starts = module.plan_starts(str(tmp_path), SIZES, training)
    assert [(start.name, start.index) for start in starts] == [("dense", 0), ("trees", 5)]
    assert starts[0].why.startswith("warm start") and starts[1].why.startswith("refitted")
    assert starts[1].model is None
    for mine, theirs in zip(starts[0].model.get_weights(), dense.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    # Without the trees among --candidates, the ensemble cannot continue: every candidate starts cold.
    networks = dict(training, candidates=["dense", "linear"])
    assert [(s.name, s.model) for s in module.plan_starts(str(tmp_path), SIZES, networks)] == [("dense", None), ("linear", None)]


def test_the_ensemble_takes_the_candidates_within_noise_of_the_best():
    from shopbusy.components.modules.model import within_noise

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 2000).astype(float)
    truth = np.where(labels == 1, 0.8, 0.2)
    predictions = {
        "best": truth,
        "close": np.clip(truth + rng.normal(0, 0.01, 2000), 0.01, 0.99),  # as good, within noise
        "worse": np.where(labels == 1, 0.6, 0.4),  # clearly worse on every row
    }
    fitted = [types.SimpleNamespace(name=name, val_loss=float(np.mean(-np.log(np.where(labels == 1, p, 1 - p))))) for name, p in predictions.items()]
    assert [c.name for c in within_noise(fitted, labels, predictions)] == ["best", "close"]


def test_another_model_is_exported_over_the_cross_fitted_trees_only_when_it_beats_them_by_more_than_noise():
    from shopbusy.components.modules.model import choose_export

    labels = np.random.default_rng(7).integers(0, 2, 600).astype(float)
    truth = np.where(labels == 1, 0.75, 0.25)

    def scored(**predictions):
        loss = lambda p: float(np.mean(-np.log(np.where(labels == 1, p, 1 - p))))  # noqa: E731
        return [
            types.SimpleNamespace(name=name, val_loss=loss(p), valid_predictions=p if name == "trees" else None)
            for name, p in predictions.items()
        ], predictions

    # A network a little better on these rows, within noise: the trees.
    toward = np.where(labels == 1, 1.0, -1.0)  # moves a probability towards the row's label
    nudged = truth + np.concatenate([0.05 * toward[:30], -0.04 * toward[30:55], np.zeros(545)])
    candidates, predictions = scored(trees=truth, dense=nudged)
    assert min(candidates, key=lambda c: c.val_loss).name == "dense"
    exported, why = choose_export(candidates, labels, predictions)
    assert exported.name == "trees" and why.startswith("the cross-fitted trees are exported unless") and "dense's" in why
    # Better on every row: the network.
    candidates, predictions = scored(trees=truth, dense=np.where(labels == 1, 0.95, 0.05))
    exported, why = choose_export(candidates, labels, predictions)
    assert exported.name == "dense" and "below the cross-fitted trees'" in why
    # Trees that were not cross-fitted (large data) are no default: the lowest loss decides.
    candidates, predictions = scored(trees=truth, dense=nudged)
    candidates[0].valid_predictions = None
    exported, why = choose_export(candidates, labels, predictions)
    assert exported.name == "dense" and why.startswith("it has the lowest validation loss")


def _type_by_hour_data(n=4000, seed=0):
    """A rule no additive model can read: odd shop types are busy before noon, even ones after."""
    rng = np.random.default_rng(seed)
    inputs = {xf(k): rng.normal(size=(n, 1)).astype("float32") for k in features.NUMERIC_FEATURE_KEYS}
    inputs.update({name: rng.integers(0, size, (n, 1)) for name, size in SIZES.items()})
    labels = ((inputs[xf("shop_type")][:, 0] % 2 == 1) == (inputs[xf("hour")][:, 0] < 12)).astype("float32")
    return inputs, labels


def test_each_candidate_builds_and_the_crossed_one_reads_an_interaction_the_linear_one_cannot():
    from shopbusy.components.modules import model as module

    inputs, labels = _type_by_hour_data()
    accuracy = {}
    for name, candidate in module.CANDIDATES.items():
        settings = candidate.settings(config.Training(seed=1).as_custom_config())
        keras.utils.set_random_seed(1)
        model = build_model(SIZES, settings, name)
        model.fit(inputs, labels, epochs=10, batch_size=settings["batch_size"], verbose=0)
        predictions = model.predict(inputs, verbose=0)[:, 0]
        assert predictions.min() >= 0 and predictions.max() <= 1, name
        accuracy[name] = np.mean((predictions > 0.5) == labels)
    assert accuracy["crossed"] > 0.95 and accuracy["linear"] < 0.65, accuracy


def test_the_pairwise_candidate_reads_cut_offs_that_act_only_together():
    """A long wait is busy near and quiet far: neither column says anything alone."""
    from shopbusy.components.modules import model as module

    rng = np.random.default_rng(2)
    n = 4000
    inputs = {xf(k): rng.normal(size=(n, 1)).astype("float32") for k in features.NUMERIC_FEATURE_KEYS}
    inputs.update({name: rng.integers(0, size, (n, 1)) for name, size in SIZES.items()})
    labels = ((inputs[xf("avgTime")][:, 0] > 0) == (inputs[xf("avgDistance")][:, 0] < 0)).astype("float32")
    accuracy = {}
    for name in ("pairwise", "linear"):
        settings = module.CANDIDATES[name].settings(config.Training(seed=1).as_custom_config())
        keras.utils.set_random_seed(1)
        model = build_model(SIZES, settings, name)
        model.fit(inputs, labels, epochs=10, batch_size=settings["batch_size"], verbose=0)
        accuracy[name] = np.mean((model.predict(inputs, verbose=0)[:, 0] > 0.5) == labels)
    assert accuracy["pairwise"] > 0.9 and accuracy["linear"] < 0.65, accuracy


def test_the_candidate_with_the_lowest_validation_loss_is_chosen_the_first_on_a_tie():
    from shopbusy.components.modules.model import choose

    class Fitted:
        def __init__(self, name, val_loss):
            self.name, self.val_loss = name, val_loss

    assert choose([Fitted("dense", 0.30), Fitted("linear", 0.25), Fitted("crossed", 0.27)]).name == "linear"
    assert choose([Fitted("dense", 0.25), Fitted("linear", 0.25)]).name == "dense"


def test_a_warm_start_continues_the_blessed_candidate_alone_a_cold_start_fits_them_all(tmp_path):
    from shopbusy.components.modules import model as module

    training = config.Training(seed=1, warm_start=True).as_custom_config()
    settings = module.CANDIDATES["linear"].settings(training)
    blessed = build_model(SIZES, settings, "linear")
    module._save_warm_start(_exported("linear", blessed), SIZES, str(tmp_path))

    def planned(*args):
        return [(start.name, start.index, start.model is not None) for start in module.plan_starts(*args)]

    everything = [(name, index, False) for index, name in enumerate(training["candidates"])]
    assert planned(str(tmp_path), SIZES, training) == [("linear", 2, True)]
    [warm] = module.plan_starts(str(tmp_path), SIZES, training)
    assert warm.why.startswith("warm start")
    for mine, theirs in zip(warm.model.get_weights(), blessed.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert planned(None, SIZES, training) == everything
    assert planned(str(tmp_path), SIZES, dict(training, warm_start=False)) == everything
    grown = dict(SIZES, **{xf("shop_type"): 25})
    assert planned(str(tmp_path), grown, training) == everything
    assert planned(str(tmp_path), SIZES, dict(training, candidates=["dense"])) == [("dense", 0, False)]
    # Each cold candidate says why it starts cold.
    assert [start.why for start in module.plan_starts(str(tmp_path), grown, training)][2].startswith(
        "cold start: vocabulary sizes changed"
    )


def test_autograph_leaves_keras_and_transform_code_as_written():
    """The Trainer's tf.functions call Keras 2, Transform and tfx_bsl code that AutoGraph
    would otherwise transpile on every process's first fit (components/modules/autograph.py)."""
    import tensorflow_transform as tft
    from tensorflow.python.autograph.impl import conversion
    from tf_keras.src.engine import training as keras_training
    from tfx_bsl.tfxio import tensor_representation_util

    import shopbusy.components.modules.model  # noqa: F401  (installs the rules)
    from shopbusy.components.modules import autograph

    assert conversion.is_allowlisted(keras_training.Model.train_step)
    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert conversion.is_allowlisted(tft.TFTransformOutput.raw_feature_spec)
    assert conversion.is_allowlisted(tensor_representation_util.InferTensorRepresentationsFromSchema)
    assert not conversion.is_allowlisted(build_model)  # our own code is still converted
    autograph.exempt_libraries()  # once per process, however often it is called
    from tensorflow.python.autograph.core import config as autograph_config

    rules = [str(rule) for rule in autograph_config.CONVERSION_RULES]
    assert len(rules) == len(set(rules))


def test_the_trainer_reads_a_splits_records_in_one_order_whatever_order_they_were_written_in():
    """ExampleGen reshuffles each split and a Beam runner keeps no order; the seeded
    shuffle, the validation halves and the trees' folds go by position."""
    import tensorflow as tf

    from shopbusy.components.modules.model import _examples

    n = 300
    rng = np.random.default_rng(0)
    inputs = {xf(k): rng.normal(size=(n, 1)).astype("float32") for k in features.NUMERIC_FEATURE_KEYS}
    inputs.update({name: rng.integers(0, size, (n, 1)) for name, size in SIZES.items()})
    labels = rng.integers(0, 2, n)
    for values in (*inputs.values(), labels):
        values[n // 2 :] = values[: n - n // 2]  # every row twice: identical rows may tie

    class WrittenIn:
        """A data accessor reading the rows in the order a run happened to write them."""

        def __init__(self, order):
            self.order = order

        def tf_dataset_factory(self, file_pattern, options, schema):
            rows = ({k: v[self.order] for k, v in inputs.items()}, labels[self.order])
            return tf.data.Dataset.from_tensor_slices(rows).batch(options.batch_size)

    no_transform = types.SimpleNamespace(transformed_metadata=types.SimpleNamespace(schema=None))
    reads = []
    for order in (np.arange(n), rng.permutation(n), rng.permutation(n)):
        read = list(_examples("split-*", WrittenIn(order), no_transform).as_numpy_iterator())
        reads.append(({k: np.stack([row[0][k] for row in read]) for k in inputs}, np.stack([row[1] for row in read])))
    (first, first_labels), *others = reads
    for columns, read_labels in others:
        assert np.array_equal(read_labels, first_labels)
        for key in inputs:
            assert np.array_equal(columns[key], first[key]), key
    # The same rows, and not in the order of any one column: alternate rows split at random.
    assert sorted(first_labels.tolist()) == sorted(labels.tolist())
    for key in inputs:
        assert not np.all(np.diff(first[key][:, 0]) >= 0), key

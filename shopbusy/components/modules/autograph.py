"""Keeps AutoGraph out of the libraries the Trainer calls inside tf.functions.

AutoGraph rewrites the Python source of every function a tf.function calls, unless a rule
exempts its package. TensorFlow 2.16's rules exempt `keras` but not `tf_keras` (Keras 2's
name since TF 2.16), nor tensorflow_transform and tfx_bsl, so each Trainer process spent
about 11 s transpiling Keras's own train step, layers and optimizer on its first `fit`,
and more on the serving signature's Transform layer (profile in bench/notes.md, "AutoGraph
and tf_keras"). These libraries are graph code written to run unconverted (TF 2.15 exempted
Keras under its old name; newer TensorFlow source exempts `tf_keras` too); the models,
their weights and the exported graph are the same either way (bundled run, same seed: the
same validation losses and test accuracy). There is no public API for the rules, hence
the private module.
"""

from tensorflow.python.autograph.core import config as autograph_config

EXEMPT_LIBRARIES = ("tf_keras", "tensorflow_transform", "tfx_bsl")


def exempt_libraries() -> None:
    """Adds a do-not-convert rule for each of EXEMPT_LIBRARIES, once per process."""
    present = {str(rule) for rule in autograph_config.CONVERSION_RULES}
    missing = tuple(
        rule for rule in (autograph_config.DoNotConvert(name) for name in EXEMPT_LIBRARIES) if str(rule) not in present
    )
    autograph_config.CONVERSION_RULES = missing + tuple(autograph_config.CONVERSION_RULES)

"""Keeps AutoGraph out of tf_keras, tensorflow_transform and tfx_bsl, graph code written to run
unconverted. TF 2.16's rules exempt `keras` but not Keras 2's new name, so each Trainer spent
about 11 s transpiling Keras on its first fit (bench/notes.md, "AutoGraph and tf_keras").
There is no public API for the rules, hence the private module.
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

"""The data contract: which columns a shop record has and what the model uses them for.

One place for feature lists, shared by the generator, the input checks, Transform, the
model and the evaluation slices. Pure Python, so importing it does not load TensorFlow.
"""

LABEL_KEY = "class"

# An identifier, not a feature by default: a model keyed on shop ids does not generalise
# to new shops.
SHOP_ID_KEY = "shop_id"

# Integer codes with no order; Transform learns a vocabulary for them.
CATEGORICAL_FEATURE_KEYS = ["shop_type", "shop_location"]

# Known, fixed domains: one-hot encoded without an analyzer. Value ranges are inclusive.
FIXED_DOMAIN_FEATURES = {"weekday": (1, 7), "hour": (0, 23)}

# The five columns the format carries with no documented meaning (the seed's distractors).
DISTRACTOR_FEATURE_KEYS = ["another1", "another2", "another3", "another4", "another5"]

# Continuous measurements and the five distractor columns; z-scored by Transform.
NUMERIC_FEATURE_KEYS = ["avgTime", "avgDistance", "avgRating", *DISTRACTOR_FEATURE_KEYS]

# Column order of the CSV format (the seed article's): label, id, then the features.
CSV_COLUMNS = [
    LABEL_KEY,
    SHOP_ID_KEY,
    *CATEGORICAL_FEATURE_KEYS,
    *FIXED_DOMAIN_FEATURES,
    *NUMERIC_FEATURE_KEYS,
]

# TFMA slices, beside the overall one.
SLICE_KEYS = [["shop_type"], ["weekday"], [LABEL_KEY], ["shop_type", "weekday"]]
# The single-column slices the report also draws a confusion matrix for, one per value.
CONFUSION_SLICE_COLUMNS = [LABEL_KEY, "shop_type"]


# What the trained model offers its readers (the Trainer writes both; serving and the report
# read them), kept here so that they need not import TensorFlow to know the names.
SERVING_OUTPUT_KEY = "outputs"  # the busy probability in the serving_default signature
HISTORY_FILE = "history.json"  # per-epoch curves, beside the TensorBoard logs in model_run


def transformed_name(key: str) -> str:
    """Name of a feature after Transform."""
    return f"{key}_xf"

"""The names of the Trainer's candidate models (built in model.py and trees.py), without
TensorFlow: the CLI checks --candidates against them at once, and config.Training lists them."""

DENSE, EMBEDDING, LINEAR, CROSSED, PAIRWISE = "dense", "embedding", "linear", "crossed", "pairwise"
TREES = "trees"  # gradient-boosted trees (trees.py), not a network
NAMES = (DENSE, EMBEDDING, LINEAR, CROSSED, PAIRWISE, TREES)
# Not a candidate one asks for: the average of the fitted candidates within noise of the
# best, exported when its validation loss is lower still (model.py, `ensemble`).
ENSEMBLE = "ensemble"

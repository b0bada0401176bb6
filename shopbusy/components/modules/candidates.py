"""The names of the Trainer's candidate models (built in model.py), without TensorFlow: the
CLI checks --candidates against them at once, and config.Training lists them."""

DENSE, EMBEDDING, LINEAR, CROSSED, PAIRWISE = "dense", "embedding", "linear", "crossed", "pairwise"
NAMES = (DENSE, EMBEDDING, LINEAR, CROSSED, PAIRWISE)

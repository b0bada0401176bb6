"""The names of the Trainer's candidate models (built in model.py), without TensorFlow: the
CLI checks --candidates against them at once, and config.Training lists them."""

DENSE, EMBEDDING, LINEAR, CROSSED = "dense", "embedding", "linear", "crossed"
NAMES = (DENSE, EMBEDDING, LINEAR, CROSSED)

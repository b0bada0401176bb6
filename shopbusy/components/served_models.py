"""The serving folder's layout, written by the Pusher and read by everything that looks for
the served model (predict, the Kubeflow baseline): SERVING/<version>/ holds a
SavedModel, and SERVING/<version>/pushed.json says the version is complete.

Why a marker: AtomicPusher renames a finished version into place, which is atomic on a local
or POSIX filesystem but not on GCS, where `rename` copies and deletes object by object and a
reader can list a version half copied. The marker is written after the last file, so a
reader that trusts only marked versions never loads a partial model. Versions without a
marker are trusted on local filesystems only, where the rename was atomic (and where
versions pushed before the marker existed live).
"""

import json
import os
from typing import List, Optional

import tensorflow as tf

PUSHED_MARKER = "pushed.json"
# The Pusher's custom property when the blessed model is the newest served version already.
ALREADY_SERVED = "already_served"
# What a blessing says of the data it judged (components/served_baseline.py), and ExampleGen's
# name for the fingerprint of its input files (tfx/components/example_gen/utils.py).
DATA_SPAN, DATA_FINGERPRINT, INPUT_FINGERPRINT = "data_span", "data_fingerprint", "input_fingerprint"
# The Pusher's custom_config key for the digest of the run's configuration and code.
RECIPE = "recipe"
STAGING_DIR = ".staging"  # hidden: model servers only load numeric version folders
REMOTE_PREFIXES = ("gs://", "s3://", "hdfs://")


def write_marker(version_dir: str, version: str, model_uri: str, blessing_uri: str, trained_on: Optional[dict] = None) -> None:
    """Marks a version complete; the last write of a push. `trained_on`: the newest span, its
    files' fingerprint and the recipe (configuration and code digest) the model came from."""
    record = {"version": version, "model": model_uri, "model_blessing": blessing_uri, "trained_on": trained_on or {}}
    with tf.io.gfile.GFile(os.path.join(version_dir, PUSHED_MARKER), "w") as f:
        f.write(json.dumps(record, indent=1))


def trained_on(span: int, fingerprint: str, recipe: str) -> dict:
    """The data and recipe a served model stands for, as its marker records them."""
    return {"span": int(span), "fingerprint": fingerprint, "recipe": recipe}


def read_marker(version_dir: str) -> dict:
    """A version's marker ({} for a version pushed before markers existed)."""
    path = os.path.join(version_dir, PUSHED_MARKER)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def pushed_versions(serving_dir: str) -> List[str]:
    """Complete pushed versions, oldest first; staging folders and unmarked remote
    versions (a push still being copied, or killed) are not versions."""
    if not tf.io.gfile.isdir(serving_dir):
        return []
    local = not serving_dir.startswith(REMOTE_PREFIXES)
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(serving_dir))
    return sorted(
        (
            name
            for name in names
            if name.isdigit() and (local or tf.io.gfile.exists(os.path.join(serving_dir, name, PUSHED_MARKER)))
        ),
        key=int,
    )


def latest(serving_dir: str) -> Optional[str]:
    """The newest complete version's folder, or None before the first push."""
    versions = pushed_versions(serving_dir)
    return os.path.join(serving_dir, versions[-1]) if versions else None

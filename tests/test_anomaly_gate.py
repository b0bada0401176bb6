"""AnomalyGate reads ExampleValidator's output through TFX's filesystem layer, so it works
where artifacts are not local files (gs:// on a cluster); here TensorFlow's ram:// stands in."""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.io import fileio

from shopbusy.components.anomaly_gate import ANOMALIES_FILE, describe_anomalies


def _write(uri, split, anomalies):
    fileio.makedirs(os.path.join(uri, f"Split-{split}"))
    with fileio.open(os.path.join(uri, f"Split-{split}", ANOMALIES_FILE), "wb") as f:
        f.write(anomalies.SerializeToString())


def test_anomalies_are_read_from_a_non_local_uri():
    uri = "ram://anomalies/1"
    bad = anomalies_pb2.Anomalies()
    bad.anomaly_info["avgRating"].description = "Unexpectedly large value: 9."
    _write(uri, "train", bad)
    _write(uri, "eval", anomalies_pb2.Anomalies())
    assert describe_anomalies(uri, ["train", "eval"]) == ["column 'avgRating': Unexpectedly large value: 9. (splits: train)"]

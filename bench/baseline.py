"""The seed article's approach, as the benchmark's baseline: one script, no pipeline.

Written from the article's description: pandas reads the CSV, the 13 raw integer columns
(everything but `class`) are the features as they are, a shuffled 60/40 train/test split,
Dense 128-256-128 with dropout and a sigmoid output (67,841 parameters), Adam, batch size
32, up to 200 epochs stopped early. The article's early-stopping callback is not shown;
this uses the Keras documentation's own example, EarlyStopping(monitor="loss",
patience=3), which matches the article's "stopped after 125 of 200 epochs".

    python -m bench.baseline --data data/shops/shops.csv --seed 0

prints one JSON line: test accuracy, epochs run, and the script's wall time.
"""

import argparse
import json
import os
import sys
import time

STARTED = time.monotonic()  # wall time counts the imports, as it does for `shopbusy run`

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402
import tf_keras as keras  # noqa: E402

TEST_FRACTION = 0.4
BATCH_SIZE = 32
EPOCHS = 200
DROPOUT = 0.2


def build_model(num_inputs: int) -> keras.Model:
    model = keras.Sequential(
        [keras.layers.Input(shape=(num_inputs,))]
        + [layer for units in (128, 256, 128) for layer in (keras.layers.Dense(units, activation="relu"), keras.layers.Dropout(DROPOUT))]
        + [keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def run(data: str, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    frame = pd.read_csv(data)
    shuffled = frame.sample(frac=1.0, random_state=seed)
    split = int(len(shuffled) * (1 - TEST_FRACTION))
    train, test = shuffled.iloc[:split], shuffled.iloc[split:]
    labels = {"train": train.pop("class").to_numpy(), "test": test.pop("class").to_numpy()}
    model = build_model(train.shape[1])
    history = model.fit(
        train.to_numpy(),
        labels["train"],
        batch_size=BATCH_SIZE,
        epochs=EPOCHS,
        verbose=0,
        callbacks=[keras.callbacks.EarlyStopping(monitor="loss", patience=3)],
    )
    _, accuracy = model.evaluate(test.to_numpy(), labels["test"], batch_size=BATCH_SIZE, verbose=0)
    return {
        "test_accuracy": float(accuracy),
        "epochs": len(history.history["loss"]),
        "train_rows": len(train),
        "test_rows": len(test),
        "wall_seconds": time.monotonic() - STARTED,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.data, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Epoch time of the report's models on whatever device the Keras backend finds: plain Keras vs har's twin.

Made for a GPU machine that has JAX but not TensorFlow (the `device` tool), so it needs only Keras, NumPy and
`har.models`; it runs on a CPU too. From the repository root:

    KERAS_BACKEND=jax python benchmarks/epoch_time.py [--clips 512] [--epochs 3] [--out FILE]

Both sides train the same model with the report's recipe (Adam, batch size 4, 20 frames of 64x64, 4 classes)
on the same random clips, in this process: `model.fit` on the plain model (the report's way) against
`model.fit` on `har.models.fast_model(model)`. Clip content does not change the arithmetic, so no dataset is
needed. Reported: seconds per epoch of `--clips` clips (the fastest of `--epochs`, after a warm-up epoch that
compiles) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from har.models import build_model, fast_model  # noqa: E402 - after the path is set


class EpochSeconds(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def fastest_epoch(network, frames, labels, epochs: int) -> float:
    network.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    timer = EpochSeconds()
    network.fit(frames, labels, batch_size=4, epochs=1 + epochs, shuffle=True, verbose=0, callbacks=[timer])
    return min(timer.seconds[1:])  # the first epoch compiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/epoch_time.json"))
    args = parser.parse_args()

    rng = np.random.default_rng(27)
    frames = rng.random((args.clips, 20, 64, 64, 3), dtype=np.float32)
    labels = keras.utils.to_categorical(rng.integers(0, 4, args.clips), 4)
    if keras.backend.backend() == "jax":
        import jax

        device = f"{jax.devices()[0].device_kind} ({jax.devices()[0].platform})"
    else:
        device = keras.backend.backend()
    results = {"backend": keras.backend.backend(), "keras": keras.__version__, "device": device, "clips": args.clips}
    for name in ("convlstm", "lrcn"):
        keras.utils.set_random_seed(27)
        plain = fastest_epoch(build_model(name), frames, labels, args.epochs)
        keras.utils.set_random_seed(27)
        twin = fastest_epoch(fast_model(build_model(name)), frames, labels, args.epochs)
        results[name] = {
            "plain_epoch_s": round(plain, 3),
            "har_epoch_s": round(twin, 3),
            "har_samples_per_s": round(args.clips / twin, 1),
            "speedup": round(plain / twin, 2),
        }
        print(name, results[name], flush=True)
    print(json.dumps(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

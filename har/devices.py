"""The devices training runs on: GPUs' memory growth, the name of the device, tf.distribute strategies.

Keras (and with it TensorFlow) is imported inside the functions, so that a process which only asks a child for
the device's name (`describe_in_child`, the Train page) never loads TensorFlow itself.
"""

from __future__ import annotations

import os
import subprocess
import sys

SMALL_CPU_CORES = 4  # up to this many cores (a free Hugging Face Space has 2), training prefers op parallelism


def configure_devices(*, ops_side_by_side: bool = False) -> str:
    """Lets GPUs grow their memory (so the app and a job can share one) and names the device used.

    `ops_side_by_side` (the twin only): on a few CPU cores, one thread per op and independent ops side by side.
    The plain trainer keeps TensorFlow's threading, because splitting an op's sums across other threads rounds
    them differently and `har train` must be the very run that `model.fit` gives (tests/test_training.py).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        cores = os.cpu_count() or 1
        if ops_side_by_side and not gpus and cores <= SMALL_CPU_CORES:
            try:
                # On a few cores, running independent small ops side by side beats splitting each op across
                # the cores: ConvLSTM training ~15% faster, LRCN ~5% slower on 2 cores (benchmarks/).
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(cores)
            except RuntimeError:
                pass  # TensorFlow already started in this process: keep its settings
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass  # already initialised
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"{len(gpus)} x {details.get('device_name', 'GPU')}"
        return f"CPU ({os.cpu_count()} cores)"
    if backend == "jax":
        import jax

        devices = jax.devices()
        return f"{len(devices)} x {devices[0].device_kind}"
    return backend


def has_gpu() -> bool:
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return jax.devices()[0].platform == "gpu"
    return False


def distribution_strategy(name: str | None):
    """None, or a tf.distribute strategy: "mirrored" (all local GPUs) or "multiworker" (TF_CONFIG hosts)."""
    if not name:
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"--distribute {name}: tf.distribute needs KERAS_BACKEND=tensorflow.")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--distribute {name!r}: choose mirrored or multiworker.")


def describe_in_child(timeout: float = 300) -> str:
    """The device a training job would use (`configure_devices`), asked of a child process, so that the caller
    (the app's server) does not load TensorFlow.

    Raises:
        RuntimeError: the child failed, said nothing (its last error lines in the message) or did not answer
            within `timeout` seconds.
    """
    try:
        result = subprocess.run([sys.executable, "-m", "har.devices"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"no answer within {timeout} s") from None
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(result.stderr.strip()[-300:] or "no answer")
    return result.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    print(configure_devices())

"""Importing Keras (and TensorFlow) without its C++ start-up lines on the terminal.

TensorFlow 2.21 prints oneDNN notes, "Could not find cuda drivers" and `failed call to cuInit ... (303)` through
absl before its logging is configured, so TF_CPP_MIN_LOG_LEVEL does not hold them back. On a machine without a
GPU they are expected, but they read like failures and bury the one line a user needs to read.
"""

from __future__ import annotations

import os
import sys
import threading

_lock = threading.Lock()


def import_keras() -> None:
    """Imports Keras with its backend while file descriptor 2 points at /dev/null; a no-op once done.

    The app calls this before it loads a model: for those seconds, other threads' stderr goes nowhere too.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _lock:
        if "keras" in sys.modules:
            return
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
                import keras

                if keras.backend.backend() == "tensorflow":
                    import tensorflow as tf

                    tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)

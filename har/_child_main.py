"""Where har's multiprocessing children start: har._child_entry, never the parent's `__main__`.

A `spawn` or `forkserver` child first re-imports its parent's main module (multiprocessing's "safe importing of
main module" rule), then unpickles its target. Under `streamlit run`, the main module is the app script while a
page runs, so every cache worker, upload decoder and timeline reader ran `streamlit_app.py` again in bare mode:
about 0.7 s each and a terminal full of "missing ScriptRunContext!". `context(method)` gives a multiprocessing
context whose children run the empty har._child_entry as their main instead: nothing to build, nothing printed.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from contextlib import contextmanager
from multiprocessing import context as _context
from multiprocessing import popen_forkserver, popen_spawn_posix

_swap_lock = threading.Lock()


# What the parent's `__main__` looks like while a child is launched: a module whose spec names har._child_entry,
# so multiprocessing tells the child to run that (empty) module as its main, by name, and no file path.
_ENTRY = types.ModuleType("__main__")
_ENTRY.__spec__ = importlib.util.find_spec("har._child_entry")


@contextmanager
def _this_module_as_main():
    """While a child is launched, `__main__` is `_ENTRY`.

    Only the launch (pickling the target, writing it to the child) sees the swap. Streamlit installs a new
    `__main__` at the start of every script run; if it did so meanwhile, that one is kept.
    """
    with _swap_lock:
        previous = sys.modules.get("__main__")
        sys.modules["__main__"] = _ENTRY
        try:
            yield
        finally:
            if sys.modules.get("__main__") is _ENTRY and previous is not None:
                sys.modules["__main__"] = previous


class _SpawnPopen(popen_spawn_posix.Popen):
    def _launch(self, process_obj):
        with _this_module_as_main():
            super()._launch(process_obj)


class _ForkServerPopen(popen_forkserver.Popen):
    def _launch(self, process_obj):
        with _this_module_as_main():
            super()._launch(process_obj)


class _SpawnProcess(_context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj):
        return _SpawnPopen(process_obj)


class _ForkServerProcess(_context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _ForkServerPopen(process_obj)


class _SpawnContext(_context.SpawnContext):
    Process = _SpawnProcess


class _ForkServerContext(_context.ForkServerContext):
    Process = _ForkServerProcess


_CONTEXTS = {"spawn": _SpawnContext(), "forkserver": _ForkServerContext()}


def context(method: str) -> _context.BaseContext:
    """A `multiprocessing` context ("spawn" or "forkserver") whose children start from this module.

    Use it like `multiprocessing.get_context(method)`: `.Process`, `.Pool`, `.Pipe`, `.set_forkserver_preload`.
    Targets must be importable functions (not defined in the parent's `__main__`).
    """
    if method not in _CONTEXTS:
        raise ValueError(f"start method {method!r}: use one of {', '.join(_CONTEXTS)}.")
    return _CONTEXTS[method]

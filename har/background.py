"""Background processes: the one layer under training jobs (`har.jobs`) and pipelines (`har.pipeline`).

A background process lives in a folder of its own, `<models_dir>/.<kind>s/<id>/`, which holds:

    events.jsonl   one JSON event per line, appended and flushed at once (followers see each line as it is
                   written; a kill loses at most the line being written). Each attempt (the first start and
                   every resume) begins with an `attempt` event; the process's state is its latest attempt's.
    pid            the supervisor's process id, written atomically (child.pid: the child's)
    cancel         present once a cancel was asked for
    process.log    what the processes printed and logged (tracebacks included)

Every attempt runs as two processes, started in a new session so that they outlive whoever started them (a
browser tab, a closed terminal): a small supervisor (`python -m har.background FOLDER MODULE WHAT`) and its child
(`python -m MODULE FOLDER`: the trainer of a job, the stage runner of a pipeline). The supervisor holds the models
dir's lock for its whole life and records how its child ended as an `exited` event: its exit status, and a
reason when it could not tell its own outcome (killed by a signal, SIGKILL being the likely out-of-memory kill, or
a non-zero status: a child that tells its outcome, failures included, exits with 0). The child dies with its
supervisor, so nothing trains without the lock.

The lock is an `flock` on `<models_dir>/.train.lock`: one job or pipeline at a time per models dir. The kernel
releases it when the supervisor ends however it ends, `kill -9` included, so a crash never leaves it stuck. Whoever
takes it writes what it is (kind, id, folder, a few words) into the lock file, so a refused start names what runs
without knowing the holder's module.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

LOCK_FILE = ".train.lock"
LOG_FILE = "process.log"  # in the folder: what the supervisor and its child print and log
LOCK_VARIABLE = "HAR_LOCK_FD"  # the inherited lock's file descriptor, in the supervisor's environment
SUPERVISOR_VARIABLE = "HAR_SUPERVISOR"  # the supervisor's pid, in the child's environment
LOCK_WAIT_SECONDS = 5  # how long a start waits for a lock whose holder is ending
BUSY = {
    "job": "a training job is already running ({id}{about}); wait for it to finish or cancel it first.",
    "pipeline": "the pipeline {id} (`har reproduce`) is running; wait for it to finish or cancel it first.",
}


class JobBusy(RuntimeError):
    """A training job or pipeline was asked for while another one runs in the same models dir."""


@dataclasses.dataclass(frozen=True)
class Holder:
    """What holds (or last held) the models dir's lock, as its lock file records it."""

    kind: str  # "job" or "pipeline"
    id: str
    folder: str
    about: str = ""  # a few words for the busy message, e.g. the models a job trains

    def busy_message(self) -> str:
        about = f", {self.about}" if self.about else ""
        return BUSY.get(self.kind, "{id} is running; wait for it to finish or cancel it first.").format(
            id=self.id, about=about
        )


@dataclasses.dataclass(frozen=True)
class Status:
    """A background process's state, read from one reading of its events.

    state: running, finished, failed, cancelled, or killed (it died without a last word).
    """

    state: str
    reason: str | None  # why it failed
    attempt: int  # the index of its latest attempt's first event


def new_id() -> str:
    """`YYYYmmdd-HHMMSS-xxxx`: ids of jobs and pipelines sort together by when they were made."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class models_lock:
    """Takes the models dir's lock for `holder` and records it there; raises JobBusy naming the holder.

    Use it as `with models_lock(models_dir, holder) as lock: spawn(folder, lock, ...)`: the supervisor inherits
    the lock and keeps it when this block closes the caller's copy.
    """

    def __init__(self, models_dir: str | Path, holder: Holder):
        self.path = Path(models_dir) / LOCK_FILE
        self.holder = holder

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+")
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(self.path)
                # A held lock whose holder is not alive: its supervisor is ending; it lets go within moments.
                if (holder is not None and Process(holder.folder).is_alive()) or time.monotonic() > deadline:
                    self.handle.close()
                    raise JobBusy(holder.busy_message() if holder else "the models dir is busy; try again.") from None
                time.sleep(0.1)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(json.dumps(dataclasses.asdict(self.holder)))
        self.handle.flush()
        return self.handle

    def __exit__(self, *exc):
        self.handle.close()  # the supervisor keeps its own copy of the lock


def lock_holder(models_dir: str | Path) -> Holder | None:
    """What holds the models dir's lock right now; None when nothing does."""
    path = Path(models_dir) / LOCK_FILE
    try:
        with open(path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None
    except BlockingIOError:
        return _read_holder(path)
    except OSError:
        return None


def _read_holder(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None  # an older lock file, or one being written


class EventLog:
    """A process's events.jsonl: appended a whole line at a time, read in one go."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self, start: int = 0) -> list[dict]:
        """Events from the `start`-th on (count the ones you have, to poll for new ones)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        lines = text.split("\n")[:-1]  # the last piece is empty or still being written
        return [json.loads(line) for line in lines[start:] if line]

    def writer(self):
        """A function that appends one event (stamped with the time) and flushes it."""
        handle = open(self.path, "a")

        def emit(event: dict) -> None:
            handle.write(json.dumps({"time": time.time(), **event}) + "\n")
            handle.flush()

        return emit


def attempt_start(events: list[dict]) -> int:
    """The index of the latest attempt's first event (0 for a log from before attempts were recorded)."""
    return max((index for index, event in enumerate(events) if event["event"] == "attempt"), default=0)


class Process:
    """A background process's folder: its events, liveness, state, cancel and wait.

    Subclasses (a job, a pipeline) say what their last words mean (`verdict`).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).resolve()
        self.id = self.folder.name
        self.models_dir = self.folder.parent.parent
        self.log = EventLog(self.folder / "events.jsonl")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r}, {self.state()})"

    def events(self, start: int = 0) -> list[dict]:
        return self.log.read(start)

    def pid(self) -> int | None:
        """The supervisor's process id."""
        return _read_pid(self.folder / "pid")

    def child_pid(self) -> int | None:
        """The child's (the trainer's, the stage runner's) process id."""
        return _read_pid(self.folder / "child.pid")

    def is_alive(self) -> bool:
        pid = self.pid()
        if pid is None:
            # Between taking the lock and writing the pid file, the starter holds the lock for this folder.
            holder = lock_holder(self.models_dir)
            return holder is not None and Path(holder.folder) == self.folder
        try:
            with open(f"/proc/{pid}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            return False
        if state in ("Z", "X"):
            return False
        # An exiting process has an empty command line but may still hold the lock; a different non-empty one
        # means the pid was reused by an unrelated process.
        return not command or str(self.folder).encode() in command

    def verdict(self, attempt: list[dict]) -> tuple[str, str | None] | None:
        """(state, reason) from the child's last words in an attempt's events; None if it said none."""
        raise NotImplementedError

    def status(self, events: list[dict] | None = None) -> Status:
        """The state of the latest attempt, from `events` (read once here when not given)."""
        events = self.events() if events is None else events
        start = attempt_start(events)
        if self.is_alive():
            return Status("running", None, start)
        attempt = events[start:]
        verdict = self.verdict(attempt)
        if verdict is not None:
            return Status(*verdict, start)
        exited = next((event for event in reversed(attempt) if event["event"] == "exited"), None)
        if exited is not None and exited.get("reason"):
            return Status("failed", exited["reason"], start)
        return Status("killed", None, start)

    def state(self) -> str:
        """running, finished, failed, cancelled, or killed (the supervisor died without a last word)."""
        return self.status().state

    def failure(self) -> str | None:
        """Why the latest attempt failed, if it did."""
        return self.status().reason

    def cancel(self) -> None:
        """Asks the process to stop (within a batch when training, within a chunk when downloading)."""
        (self.folder / "cancel").touch()

    def cancel_requested(self) -> bool:
        return (self.folder / "cancel").exists()

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Waits until the process is no longer running; returns its final state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.id} still running after {timeout} s")
            time.sleep(poll)
        return self.state()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(text)
    staging.replace(path)


def spawn(folder: str | Path, lock, child: str, what: str) -> int:
    """Starts an attempt: its `attempt` event (so it reads as starting, not killed), the supervisor, its pid file.

    Args:
        folder: the process's folder.
        lock: the models dir's lock, held (`models_lock`); the supervisor inherits it.
        child: the module the supervisor runs as `python -m <child> FOLDER`.
        what: how the supervisor names the child in a reason ("training" -> "the training process").

    Returns the index of the attempt's first event.
    """
    folder = Path(folder).resolve()
    log = EventLog(folder / "events.jsonl")
    events = log.read()
    number = 1 + sum(event["event"] == "attempt" for event in events)
    log.writer()({"event": "attempt", "number": number})
    (folder / "pid").unlink(missing_ok=True)  # the last attempt's process is gone; this one starts now
    with open(folder / LOG_FILE, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "har.background", str(folder), child, what],
            pass_fds=(lock.fileno(),),
            env={**os.environ, LOCK_VARIABLE: str(lock.fileno())},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the caller's session and its Ctrl-C
        )
    _write_atomically(folder / "pid", str(process.pid))
    return len(events)


def supervise(folder: Path, lock_fd: int, child: str, what: str) -> int:
    """The supervisor: holds the lock, runs the child, records how it ended as an `exited` event."""
    # Keep the inherited lock out of every program started from here (the child included, and whatever
    # libraries fork and exec): such a process outliving this one would hold the lock after the attempt ended.
    os.set_inheritable(lock_fd, False)
    process = subprocess.Popen(
        [sys.executable, "-m", child, str(folder)], env={**os.environ, SUPERVISOR_VARIABLE: str(os.getpid())}
    )
    _write_atomically(folder / "child.pid", str(process.pid))
    code = process.wait()
    event = {"event": "exited", "code": code, "signal": None, "reason": None}
    if code < 0:
        name = signal.Signals(-code).name
        event.update(signal=name, reason=f"the {what} process was killed by {name}")
        if -code == signal.SIGKILL:
            event["reason"] += (
                "; if nobody killed it, the machine ran out of memory: lower the batch size or the classes"
            )
    elif code != 0:
        event["reason"] = f"the {what} process exited with status {code} (its log: {folder / LOG_FILE})"
    EventLog(folder / "events.jsonl").writer()(event)
    return code


def die_with_supervisor(supervisor: str | None) -> None:
    """Asks Linux to SIGKILL this process (a child) when its supervisor, the holder of the lock, dies.

    Args:
        supervisor: the supervisor's pid as its environment gave it (`SUPERVISOR_VARIABLE`).
    """
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if str(os.getppid()) != supervisor:  # it died before the request took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    folder, child, what = argv
    return supervise(Path(folder), int(os.environ[LOCK_VARIABLE]), child, what)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

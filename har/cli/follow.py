"""Following a background job or pipeline in the terminal: its events as lines and progress bars."""

from __future__ import annotations

import sys
import time

from har.background import attempt_start

POLL_SECONDS = 0.3


class EventPrinter:
    """Prints one job's or pipeline's events: a line per milestone, a tqdm bar for batches and progress."""

    def __init__(self, several_runs: bool):
        self.several_runs = several_runs  # name runs by id (several seeds) rather than by model
        self.bar = None

    def show(self, event: dict) -> None:
        handler = getattr(self, f"on_{event['event']}", None)
        if handler is not None:
            handler(event, self.name(event))

    def name(self, event: dict) -> str:
        if not self.several_runs:
            return str(event.get("model"))
        return str(event.get("run") or event.get("model"))

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_started(self, event: dict, name: str) -> None:
        resumed = f", resuming after epoch {event['resumed_after']}" if event.get("resumed_after") else ""
        print(
            f"{name}: {event['parameters']:,} parameters on {event['device']}, {event['train_clips']} train / "
            f"{event['validation_clips']} validation / {event['test_clips']} test clips{resumed}"
        )

    def on_batch(self, event: dict, name: str) -> None:
        from tqdm import tqdm

        if self.bar is None:
            # No rate or ETA: events arrive in bursts, so tqdm's clock would show nonsense like 500000 it/s.
            self.bar = tqdm(
                total=event["steps"],
                desc=f"{name} epoch {event['epoch']}",
                leave=False,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps{postfix}",
            )
        self.bar.n = event["step"]
        self.bar.set_postfix(loss=f"{event['loss']:.3f}", accuracy=f"{event['accuracy']:.3f}", refresh=True)

    def on_epoch(self, event: dict, name: str) -> None:
        self.close_bar()
        print(
            f"{name} epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f} "
            f"accuracy {event['accuracy']:.4f} val_loss {event.get('val_loss', float('nan')):.4f} "
            f"val_accuracy {event.get('val_accuracy', float('nan')):.4f} ({event['seconds']:.1f} s)"
        )

    def on_early_stop(self, event: dict, name: str) -> None:
        print(f"{name}: early stop at epoch {event['epoch']}, best epoch {event['best_epoch']}")

    def on_finished(self, event: dict, name: str) -> None:
        print(
            f"{name}: test accuracy {event['test_accuracy']:.4f}, loss {event['test_loss']:.4f} -> run {event['run']}"
        )
        if event.get("at_chance"):
            print(f"har: warning: {name}: {event['at_chance_reason']}", file=sys.stderr)

    def on_failed(self, event: dict, name: str) -> None:
        print(f"har: error: training failed: {event.get('reason')}", file=sys.stderr)

    on_job_failed = on_failed

    def on_cancelled(self, event: dict, name: str) -> None:
        print(f"{name if event.get('model') else 'job'}: cancelled", file=sys.stderr)

    def on_stage(self, event: dict, name: str) -> None:
        if event["status"] == "done":
            return
        self.close_bar()
        print(f"{event['stage']}: {'already done' if event['status'] == 'skipped' else 'started'}", file=sys.stderr)

    def on_progress(self, event: dict, name: str) -> None:
        from tqdm import tqdm

        if self.bar is None or self.bar.desc != event["stage"]:
            self.close_bar()
            in_bytes = event["stage"] == "download"
            self.bar = tqdm(
                total=event["total"],
                desc=event["stage"],
                leave=False,
                unit="B" if in_bytes else "clip",
                unit_scale=in_bytes,
                unit_divisor=1024,
            )
        self.bar.total, self.bar.n = event["total"], event["done"]
        self.bar.refresh()

    def on_pipeline_failed(self, event: dict, name: str) -> None:
        print(f"har: error: {event['reason']}", file=sys.stderr)

    def on_exited(self, event: dict, name: str) -> None:
        """The supervisor's word on a child that died (a signal, an out-of-memory kill, a crash)."""
        if event.get("reason"):
            print(f"har: error: {event['reason']}", file=sys.stderr)


def follow(process, seen: int | None = None, *, what: str, continue_hint: str) -> int:
    """`watch` until the process ends; Ctrl-C cancels it, waits for it to stop and says how to continue (130)."""
    try:
        return watch(process, seen, what=what, continue_hint=continue_hint)
    except KeyboardInterrupt:
        print("cancelling...", file=sys.stderr)
        process.cancel()
        process.wait()
        print(f"{what} cancelled; {continue_hint}", file=sys.stderr)
        return 130


def watch(process, seen: int | None = None, *, what: str, continue_hint: str) -> int:
    """Shows a job's or pipeline's events (by default from its latest attempt on) until it ends.

    Args:
        process: a `har.jobs.Job` or `har.pipeline.Pipeline`.
        seen: how many of its events to skip; None: those before its latest attempt.
        what: "job X" or "pipeline X", for the message when it died without a last word.
        continue_hint: how to continue it then, e.g. "resume it with `har train --resume X`".

    Returns 0 only if it finished.
    """
    if seen is None:
        seen = attempt_start(process.events())
    # A job of one seed names its runs by model; one of several seeds, and a pipeline, by run id.
    printer = EventPrinter(several_runs=len(getattr(process, "seeds", ())) != 1)
    while True:
        alive = process.is_alive()
        for event in process.events(seen):
            seen += 1
            printer.show(event)
        if not alive:
            break
        time.sleep(POLL_SECONDS)
    printer.close_bar()
    state = process.state()
    if state == "killed":
        print(f"har: error: {what} stopped unexpectedly; {continue_hint}", file=sys.stderr)
    return 0 if state == "finished" else 1

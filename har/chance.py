"""Telling a run that learned from one stuck at chance, in plain words.

A classifier that guesses scores 1 / C accuracy on C balanced classes, and its cross-entropy is ln C (the
loss of predicting 1 / C for every class). A run is "at chance" when either holds:

- its test accuracy is not clearly above 1 / C: a binomial test over the test clips (one-sided, p >= 0.01)
  cannot tell it from guessing, so on 32 test clips of 4 classes anything up to 14 right (44%) counts;
- its validation loss never fell clearly below ln C (never 10% below): it never left the starting plateau,
  whatever its test accuracy says.
"""

from __future__ import annotations

import math

SIGNIFICANCE = 0.01  # the chance a guessing model scores this well or better
LOSS_MARGIN = 0.9  # "clearly below ln C": at least 10% below it


def judge(*, test_accuracy: float, test_clips: int, num_classes: int, val_losses: list[float]) -> str | None:
    """None when the run learned; otherwise what happened and what to try, in one or two sentences."""
    chance = 1 / num_classes
    correct = round(test_accuracy * test_clips)
    reasons = []
    if test_clips and _binomial_tail(correct, test_clips, chance) >= SIGNIFICANCE:
        reasons.append(
            f"its test accuracy ({test_accuracy:.0%} of {test_clips} clips) is within what guessing "
            f"scores ({chance:.0%} for {num_classes} classes)"
        )
    guess_loss = math.log(num_classes)
    if val_losses and min(val_losses) > LOSS_MARGIN * guess_loss:
        reasons.append(
            f"its validation loss never fell clearly below {guess_loss:.2f}, the loss of guessing "
            f"(lowest {min(val_losses):.2f})"
        )
    if not reasons:
        return None
    return (
        f"This run did not learn: {' and '.join(reasons)}. Early stopping may have ended it on its starting "
        "plateau; train again with more patience or another seed (several seeds show how often it happens)."
    )


def _binomial_tail(correct: int, trials: int, p: float) -> float:
    """P(X >= correct) for X ~ Binomial(trials, p): the one-sided binomial test's p-value."""
    from scipy import stats  # here, not at the top: har.runs imports this module and scipy.stats takes ~1 s

    return float(stats.binomtest(correct, trials, p, alternative="greater").pvalue)

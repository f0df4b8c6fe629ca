"""Saying aloud when a run is no better than guessing (the seed-spread verdicts are in test_evaluation)."""

import math

import pytest

from har.chance import SIGNIFICANCE, _binomial_tail, judge

LEARNED = [1.30, 0.90, 0.40]


def test_a_run_that_learned_is_not_at_chance():
    assert judge(test_accuracy=0.90, test_clips=32, num_classes=4, val_losses=LEARNED) is None


@pytest.mark.parametrize("accuracy, expected", [(0.25, True), (14 / 32, True), (15 / 32, False)])
def test_test_accuracy_within_binomial_noise_of_chance_is_at_chance(accuracy, expected):
    # Guessing among 4 classes gets 14 or more of 32 right with p = 0.016; 15 or more with p = 0.006.
    verdict = judge(test_accuracy=accuracy, test_clips=32, num_classes=4, val_losses=LEARNED)
    assert (verdict is not None) == expected
    if expected:
        assert "test accuracy" in verdict and "25% for 4 classes" in verdict and "another seed" in verdict


def test_a_validation_loss_that_never_left_ln_c_is_at_chance_whatever_the_test_says():
    plateau = [1.39, 1.38, 1.385, 1.38]  # ln 4 = 1.386
    verdict = judge(test_accuracy=0.60, test_clips=32, num_classes=4, val_losses=plateau)
    assert verdict is not None and "validation loss never fell clearly below 1.39" in verdict
    assert (
        judge(test_accuracy=0.60, test_clips=32, num_classes=4, val_losses=[*plateau, 0.9 * math.log(4) - 0.01]) is None
    )


def hand_written_tail(correct: int, trials: int, p: float) -> float:
    """har.chance's binomial tail before SciPy: P(X >= correct), summed in log space."""
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) + k * log_p + (trials - k) * log_q
        for k in range(correct, trials + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(term - top) for term in terms))


@pytest.mark.parametrize(
    "correct, trials, p",
    [(14, 32, 0.25), (15, 32, 0.25), (8, 32, 0.25), (32, 32, 0.25), (3, 4, 0.5), (10, 40, 1 / 3), (42, 1669, 0.02)],
)
def test_the_binomial_tail_is_scipys_binomtest_and_agrees_with_the_hand_written_sum(correct, trials, p):
    from scipy.stats import binomtest

    assert _binomial_tail(correct, trials, p) == binomtest(correct, trials, p, alternative="greater").pvalue
    # The old sum rounded in its last digits (it gave 0.31249999999999970 for 3 of 4 at p = 0.5, not 0.3125).
    assert _binomial_tail(correct, trials, p) == pytest.approx(hand_written_tail(correct, trials, p), rel=1e-10)


def test_the_verdict_is_the_same_as_with_the_hand_written_sum_for_every_score():
    for trials, classes in [(32, 4), (12, 2), (100, 10)]:
        for correct in range(trials + 1):
            old = hand_written_tail(correct, trials, 1 / classes) >= SIGNIFICANCE
            assert (_binomial_tail(correct, trials, 1 / classes) >= SIGNIFICANCE) == old, (correct, trials)


def test_large_test_sets_do_not_overflow():
    assert judge(test_accuracy=0.025, test_clips=1669, num_classes=50, val_losses=[3.8]) is not None
    assert judge(test_accuracy=0.60, test_clips=1669, num_classes=50, val_losses=[1.5]) is None

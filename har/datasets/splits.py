"""Train, validation and test splits of a dataset's clip indices."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, train_test_split


class Split(NamedTuple):
    train: np.ndarray  # clip indices, int64
    validation: np.ndarray
    test: np.ndarray


def report_split(count: int, *, test_fraction: float = 0.25, validation_fraction: float = 0.2, seed: int = 27) -> Split:
    """The report's split: a random `test_fraction` for testing, then a random `validation_fraction` of the rest.

    The test part is what the report's `train_test_split(..., test_size=0.25, shuffle=True, random_state=27)`
    picks. Validation is drawn at random too, unlike Keras' `validation_split`, which takes the last 20% of the
    training arrays before any shuffling.
    """
    indices = np.arange(count)
    if count < 3:
        raise ValueError(f"a split needs at least 3 clips, the dataset has {count}.")
    train, test = train_test_split(indices, test_size=test_fraction, shuffle=True, random_state=seed)
    train, validation = train_test_split(train, test_size=validation_fraction, shuffle=True, random_state=seed)
    return Split(np.sort(train), np.sort(validation), np.sort(test))


def group_split(
    groups: np.ndarray, *, test_fraction: float = 0.25, validation_fraction: float = 0.2, seed: int = 27
) -> Split:
    """A split in which no group has clips in two parts, as UCF50's authors recommend.

    Clips of one UCF50 group share actor and background, so a random split lets a model score by recognising
    the scene. Groups are UCF50's gXX numbers; a clip without one (-1) is a group of its own.
    """
    groups = np.asarray(groups).copy()
    ungrouped = groups < 0
    groups[ungrouped] = groups.max(initial=0) + 1 + np.arange(ungrouped.sum())
    if len(np.unique(groups)) < 3:
        raise ValueError(
            f"the group split needs clips from at least 3 groups, the dataset has {len(np.unique(groups))}."
        )
    indices = np.arange(len(groups))
    train, test = _split_groups(indices, groups, test_fraction, seed)
    train, validation = _split_groups(train, groups, validation_fraction, seed)
    return Split(np.sort(train), np.sort(validation), np.sort(test))


def _split_groups(indices: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    keep, held_out = next(splitter.split(indices, groups=groups[indices]))
    return indices[keep], indices[held_out]


def make_split(groups: np.ndarray, *, split: str, test_fraction: float, validation_fraction: float, seed: int) -> Split:
    """The split named by `split` ("report" or "group") over clips with the given group ids."""
    if split == "report":
        return report_split(
            len(groups), test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed
        )
    if split == "group":
        return group_split(groups, test_fraction=test_fraction, validation_fraction=validation_fraction, seed=seed)
    raise ValueError(f"split={split!r}: choose 'report' or 'group'.")


def config_split(groups: np.ndarray, config) -> Split:
    """The split a `har.config.Config` names (its split, fractions and seed) over clips with these group ids."""
    return make_split(
        groups,
        split=config.split,
        test_fraction=config.test_fraction,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )

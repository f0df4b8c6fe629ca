"""The one config object: the report's defaults, and a wrong value named with what to choose."""

import re

import pytest

from har.config import Config


def test_the_defaults_are_the_report_recipe_and_its_model_fit():
    config = Config()
    assert (config.seed, config.batch_size, config.epochs, config.patience, config.learning_rate) == (
        27,
        4,
        30,
        5,
        1e-3,
    )
    assert config.trainer == "plain"
    assert (config.distribute, config.mixed_precision) == (None, False)  # one device, float32
    assert Config.from_dict(config.replace(trainer="twin").to_dict()).trainer == "twin"
    spread = config.replace(distribute="mirrored", mixed_precision=True)
    assert Config.from_dict(spread.to_dict()) == spread


@pytest.mark.parametrize(
    "changes, says",
    [
        ({"trainer": "fast"}, "trainer='fast': choose one of twin, plain"),
        ({"split": "random"}, "split='random': choose one of report, group"),
        ({"epochs": 0}, "epochs=0: must be a positive whole number"),
        ({"validation_fraction": 1.0}, "validation_fraction=1.0: must lie strictly between 0 and 1"),
        ({"distribute": "everywhere"}, "distribute='everywhere': choose one of mirrored, multiworker, or None"),
        ({"mixed_precision": "yes"}, "mixed_precision='yes': must be True or False"),
    ],
)
def test_a_wrong_value_is_named_with_what_to_choose(changes, says):
    with pytest.raises(ValueError) as error:
        Config(**changes)
    assert says in str(error.value)


def test_parse_seeds_reads_comma_separated_distinct_whole_numbers():
    from har.config import parse_seeds

    assert parse_seeds("27, 28,29") == (27, 28, 29)
    assert parse_seeds("5") == (5,)


@pytest.mark.parametrize("text", ["", "27,x", "27,27", "-1", " , "])
def test_parse_seeds_names_the_bad_text(text):
    from har.config import parse_seeds

    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_seeds(text)

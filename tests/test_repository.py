"""The repository keeps its promises to a newcomer: the README's commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), flags=re.S)


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    app, tests = readme_commands()[:2]
    assert "streamlit run streamlit_app.py" in app and "har data demo" in app
    assert "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


def test_top_level_layout_matches_the_design():
    for name in ("streamlit_app.py", "pages", "har", "models", "data", "tests", "requirements.txt"):
        assert (ROOT / name).exists(), name

"""The repository keeps its promises to a newcomer: the README's commands are the ones CI runs."""

import ast
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


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def har_imports(path: Path, modules: set[str], name: str | None = None) -> set[str]:
    """The har modules that `path` (the module `name`) imports anywhere in it, function-local imports included."""
    found, name = set(), name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = python_files("har")
    modules = {module_name(path) for path in files}
    return {module_name(path): har_imports(path, modules) for path in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and modules importing themselves."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_local_import(tmp_path):
    graph = {"har.a": {"har.b"}, "har.b": {"har.c"}, "har.c": {"har.a"}, "har.d": {"har.a"}}
    assert cycles(graph) == [["har.a", "har.b", "har.c"]]
    source = tmp_path / "x.py"
    source.write_text("import har.a\n\ndef f():\n    from har.b import thing\n    from har import c\n")
    assert har_imports(source, {"har", "har.a", "har.b", "har.c"}, "har.x") == {"har.a", "har.b", "har.c"}


def test_har_has_no_import_cycle_function_local_imports_included():
    assert cycles(import_graph()) == []


def test_the_library_never_imports_streamlit():
    offenders = []
    for path in python_files("har"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name.split(".")[0] == "streamlit" for name in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 80


def test_modules_and_functions_stay_small_enough_to_read_in_one_sitting():
    too_long = []
    for path in python_files("har", "pages", "app") + [ROOT / "streamlit_app.py"]:
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}: {node.name} has {length} lines")
    assert too_long == []


def test_pages_only_read_widgets_call_har_and_render():
    """No process plumbing, temporary files or environment in the app's code: that is har's (or the entry's)."""
    forbidden = ("subprocess", "tempfile", "python -c", "os.environ", '"-c"')
    offenders = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in python_files("pages", "app")
        for word in forbidden
        if word in path.read_text()
    ]
    assert offenders == []
    assert sorted(path.name for path in (ROOT / "pages").iterdir() if path.suffix == ".py") == [
        "compare.py",
        "data.py",
        "explain.py",
        "overview.py",
        "predict.py",
        "train.py",
    ]

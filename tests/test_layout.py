"""The library's shape: wings by audience, arrows that point one way, private names kept private,
and no lesson importing from more than five library modules."""

import ast
import importlib
import json
import re
import tomllib
from pathlib import Path

import pytest

from seresnet_lib.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "seresnet_lib"
MODULES = sorted(LIBRARY.rglob("*.py"))
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WINGS = ("model", "figures", "training", "lab", "classroom")
# Who may import whom: a wing uses the ones listed, and the shared helpers at the top level.
USES = {"model": set(), "figures": {"model"}, "training": {"model"}, "lab": {"model", "training"},
        "classroom": {"model", "figures"}}


def code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def code_of(notebook: Path) -> str:
    return "\n".join(code_cells(notebook))


def wing_of(module: Path) -> str | None:
    parts = module.relative_to(LIBRARY).parts
    return parts[0] if len(parts) > 1 else None


def imported_modules(tree: ast.AST, module: Path) -> set[str]:
    """The seresnet_lib modules a file imports, as dotted names (relative imports resolved)."""
    package = ["seresnet_lib", *module.relative_to(LIBRARY).parent.parts]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.add(name)
    return {name for name in found if name.startswith("seresnet_lib")}


def public_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def exported() -> set[str]:
    names = set()
    for module in MODULES:
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
                names.update(ast.literal_eval(node.value) if isinstance(node.value, ast.List)
                             and all(isinstance(e, ast.Constant) for e in node.value.elts) else [])
    return names


@pytest.mark.parametrize("wing", WINGS)
def test_each_wing_says_who_it_is_for_and_lists_its_names(wing):
    init = LIBRARY / wing / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"{wing}/__init__.py has no docstring"
    assert "__all__" in init.read_text()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(LIBRARY)))
def test_imports_point_down_the_wings(module):
    wing = wing_of(module)
    if wing is None or module.name in ("cli.py", "__main__.py"):
        return
    for name in imported_modules(ast.parse(module.read_text()), module):
        parts = name.split(".")
        other = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in WINGS) else None
        if other in WINGS and other != wing:
            assert other in USES[wing], f"{module.relative_to(LIBRARY)} imports {name}: {wing} may use {USES[wing]}"


def test_no_function_imports_inside_the_library_but_optional_heavy_ones():
    """Imports at the top of each module, where a reader looks for them (papermill, torchinfo aside, and
    ``kernel``, which is built on the series extra's jupyter_client)."""
    for module in MODULES:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and inner.level and inner.module != "kernel":
                        pytest.fail(f"{module.relative_to(LIBRARY)}: {node.name} imports from the library inside")


def used_names(source: str) -> set[str]:
    """The names a piece of code uses: variables, attributes (``module.name``) and imported names."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a notebook cell with IPython syntax (%time): read it line by line
        return set().union(*(used_names(line) for line in source.splitlines() if not line.lstrip()[:1] in "%!"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.name for alias in node.names)
    return names


def test_a_public_name_has_a_user_outside_its_module():
    """Names used only in their own file start with an underscore, unless a wing exports them."""
    files = [*MODULES, *sorted((ROOT / "tests").glob("*.py"))]
    users = {path: used_names(path.read_text()) for path in files}
    users.update({path: set().union(*map(used_names, code_cells(path))) for path in LESSONS})
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    plugins = {target.rsplit(":", 1)[1] for group in entry_points.values() for target in group.values()}
    # the command line calls each wing's commands by name; other packages load the entry points' plugins
    allowed = exported() | set(COMMANDS) | plugins
    lonely = [f"{module.relative_to(LIBRARY)}: {name}" for module in MODULES
              for name in sorted(public_names(ast.parse(module.read_text())) - allowed)
              if not any(name in names for path, names in users.items() if path != module)]
    assert not lonely, "used only in their own module (make them private): " + ", ".join(lonely)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_a_lesson_imports_from_at_most_five_library_modules(lesson):
    modules = set(re.findall(r"^\s*from (seresnet_lib[\w.]*) import", code_of(lesson), re.M))
    modules |= set(re.findall(r"^\s*import (seresnet_lib[\w.]*)", code_of(lesson), re.M))
    assert len(modules) <= 5, sorted(modules)


def test_seresnet_offers_every_wings_commands_and_names_an_unknown_one(capsys):
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out
    for command, (wing, _) in COMMANDS.items():
        assert f"\n  {command} " in listed
        assert callable(getattr(importlib.import_module(f"seresnet_lib.{wing}.cli"), command))
    assert main(["trian"]) == 2
    assert "seresnet: error: unknown command 'trian'" in capsys.readouterr().err
    assert main(["sweep"], wing="training") == 2  # a wing's entry point takes its own commands only
    assert "python -m seresnet_lib.training: error: unknown command 'sweep'" in capsys.readouterr().err


def test_installed_from_a_wheel_the_lessons_folder_is_the_copy_being_run(tmp_path, monkeypatch):
    """Outside a checkout, a lesson's kernel runs in a copy of notebooks/: that copy is the lessons' folder."""
    from seresnet_lib import paths

    monkeypatch.setattr(paths, "_PROJECT_ROOT", None)
    monkeypatch.delenv("SERESNET_NOTEBOOKS", raising=False)
    copy = tmp_path / "my_notebooks"
    copy.mkdir()
    (copy / "07_inside_se.ipynb").write_text("{}")
    monkeypatch.chdir(copy)
    assert paths._notebooks() == copy
    monkeypatch.chdir(tmp_path)  # the folder above it, as a papermill command run from there
    assert paths._notebooks() == tmp_path / "notebooks"
    monkeypatch.setenv("SERESNET_NOTEBOOKS", str(copy))
    assert paths._notebooks() == copy

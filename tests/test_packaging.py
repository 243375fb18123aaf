"""The two ways to install (pip and conda) ask for the same packages, and for every package used."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONDA = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
CONDA_TO_PIP = {"pytorch": "torch"}
LOCAL = {"seresnet_lib", "conftest"} | {path.stem for path in (ROOT / "tests").glob("*.py")}


def package_name(requirement: str) -> str:
    """The normalized distribution name of a requirement such as ``torch>=2.4`` (PEP 503)."""
    name = re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(sources: list[str]) -> set[str]:
    """The top-level modules that ``sources`` import, without the standard library and our own."""
    modules = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - LOCAL


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions that provide ``modules``."""
    provided_by = importlib.metadata.packages_distributions()
    return {package_name(dist) for module in modules for dist in provided_by[module]}


def code_of(paths) -> list[str]:
    return [path.read_text() for path in paths]


def notebook_code() -> list[str]:
    """The lessons' code cells, and the worked solutions folded into their markdown (readers run those too)."""
    solution = re.compile(r"```python\n(.*?)```", re.DOTALL)
    code = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            code += [cell.source] if cell.cell_type == "code" else solution.findall(cell.source)
    return code


def test_environment_yml_names_the_same_packages_as_pyproject():
    pip_names = {package_name(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]}
    conda_names = {CONDA_TO_PIP.get(package_name(d), package_name(d)) for d in CONDA if isinstance(d, str)}
    conda_names -= {"python", "pip"}
    assert conda_names == pip_names

    pip_section = next(d["pip"] for d in CONDA if isinstance(d, dict))
    assert any(line.startswith("-e") and "[test]" in line for line in pip_section)


def test_every_package_the_library_and_the_lessons_import_is_a_dependency():
    used = distributions(imported_modules(code_of((ROOT / "seresnet_lib").rglob("*.py")) + notebook_code()))
    declared = {package_name(r) for r in PROJECT["dependencies"]}
    assert used - declared == set()
    assert {"numpy", "pillow", "nbformat", "nbclient", "nbconvert"} <= used  # imported directly, so named directly


def test_every_package_the_tests_import_is_a_dependency_or_in_the_test_extra():
    used = distributions(imported_modules(code_of([*(ROOT / "tests").glob("*.py"), ROOT / "conftest.py"])))
    declared = {package_name(r) for r in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]}
    assert used - declared == set()
    assert {"pyyaml", "pytest", "timm"} <= used


def test_required_python_is_what_the_code_needs():
    """tomllib (these tests) is new in Python 3.11; conda pins the same version."""
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", PROJECT["requires-python"])
    assert minimum and (int(minimum[1]), int(minimum[2])) == (3, 11)
    assert "python=3.11" in CONDA
    assert "Python 3.11+" in (ROOT / "README.md").read_text()

"""The two ways to install (pip and conda) ask for the same packages, and for every package used."""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONDA = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
CONDA_TO_PIP = {"pytorch": "torch", "ray-core": "ray"}
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


EXTRAS = PROJECT["optional-dependencies"]
CORE = {package_name(r) for r in PROJECT["dependencies"]}


def extra(name: str) -> set[str]:
    return {package_name(r) for r in EXTRAS[name] if not r.startswith(PROJECT["name"])}


def conda_packages(environment: list) -> dict[str, str]:
    """{pip name: version spec} of a conda environment's packages, its pip section's included (not -e)."""
    pip_section = next((d["pip"] for d in environment if isinstance(d, dict)), [])
    specs = [d for d in environment if isinstance(d, str)] + [r for r in pip_section if not r.startswith("-")]
    named = {package_name(spec): spec[len(re.split(r"[<>=!~ ]", spec, maxsplit=1)[0]):].strip() for spec in specs}
    return {CONDA_TO_PIP.get(name, name): version for name, version in named.items() if name not in ("python", "pip")}


def test_the_core_is_what_a_lesson_needs_and_each_extra_what_its_use_needs():
    assert CORE == {"torch", "torchvision", "matplotlib", "torchinfo", "numpy", "pillow", "pyyaml", "tqdm"}
    assert "jupyterlab" in extra("lab")
    assert {"papermill", "nbformat", "nbclient"} <= extra("series")
    assert extra("bench") == {"timm"}
    assert extra("cluster") == {"ray"}
    assert {"sphinx", "myst-nb", "sphinx-book-theme", "sphinx-mathjax-offline"} <= extra("site")
    tools = [r for r in EXTRAS["site"] if package_name(r) != "nbformat"]  # nbformat: what build.py reads with
    assert all(re.search(r"==\d", r) for r in tools), "the site's tools are pinned"
    assert {"pytest", "nbval"} <= extra("test")
    assert f"{PROJECT['name']}[lab,series,bench,cluster,site]" in EXTRAS["test"]  # the tests use everything


def pip_versions() -> dict[str, str]:
    """{name: version spec} of every package pyproject.toml asks for, the core's and every extra's."""
    return {package_name(r): r[len(re.split(r"[<>=!~ \[]", r, maxsplit=1)[0]):].split("#")[0].strip()
            for r in PROJECT["dependencies"] + [r for name in EXTRAS for r in EXTRAS[name]]
            if not r.startswith(PROJECT["name"])}


def test_environment_yml_names_the_same_packages_as_pyproject():
    assert conda_packages(CONDA) == pip_versions()  # the same versions too: the site's pins above all
    pip_section = next(d["pip"] for d in CONDA if isinstance(d, dict))
    assert any(line.startswith("-e") and "[test]" in line for line in pip_section)


def test_binder_builds_the_environment_first_and_installs_the_project_after():
    """repo2docker builds .binder/environment.yml before the repository is copied in: an editable install
    there fails; postBuild runs once it is in."""
    binder = yaml.safe_load((ROOT / ".binder" / "environment.yml").read_text())["dependencies"]
    versions = pip_versions()
    assert conda_packages(binder) == {name: versions[name] for name in CORE | extra("lab") | extra("series")}
    assert "python=3.11" in binder
    assert not any(isinstance(d, dict) and any(line.startswith("-e") for line in d["pip"]) for d in binder)
    post_build = ROOT / ".binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert re.search(r"^pip install (--no-deps )?-e \.$", post_build.read_text(), re.MULTILINE)


def test_the_lessons_import_only_the_core():
    assert distributions(imported_modules(notebook_code())) - CORE == set()


def test_every_package_the_library_imports_is_a_dependency_and_each_command_names_its_extra():
    from seresnet_lib.cli import EXTRAS as COMMAND_EXTRAS

    used = distributions(imported_modules(code_of((ROOT / "seresnet_lib").rglob("*.py"))))
    declared = CORE | extra("series") | extra("bench") | extra("cluster")
    assert used - declared == set()
    assert {"numpy", "pillow", "nbformat", "nbclient", "nbconvert"} <= used  # imported directly, so named directly
    for module, name in COMMAND_EXTRAS.items():
        assert distributions({module}) <= extra(name), (module, name)


def test_every_package_the_tests_import_is_a_dependency_or_in_the_test_extra():
    used = distributions(imported_modules(code_of([*(ROOT / "tests").glob("*.py"), ROOT / "conftest.py"])))
    declared = CORE | {name for extra_name in EXTRAS for name in extra(extra_name)}
    assert used - declared == set()
    assert {"pyyaml", "pytest", "timm", "playwright", "ray"} <= used


def test_required_python_is_what_the_code_needs():
    """tomllib (these tests) is new in Python 3.11; conda pins the same version."""
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", PROJECT["requires-python"])
    assert minimum and (int(minimum[1]), int(minimum[2])) == (3, 11)
    assert "python=3.11" in CONDA
    assert "Python 3.11+" in (ROOT / "README.md").read_text()


def test_a_command_whose_extra_is_missing_says_which_to_install(monkeypatch, capsys):
    from seresnet_lib import cli

    def without_papermill(name):
        raise ModuleNotFoundError("No module named 'papermill'", name="papermill")

    monkeypatch.setattr(cli, "importlib", SimpleNamespace(import_module=without_papermill))
    assert cli.main(["check", "student/"]) == 2
    assert "seresnet check: error: it needs papermill, which the series extra installs: " \
           "pip install 'seresnet-lib[series]'" in capsys.readouterr().err


def test_a_lessons_parameters_are_read_as_papermill_reads_them_without_papermill(monkeypatch, tmp_path):
    """Lesson 06 sweeps inline on the core install: reading lesson 05's parameters needs no papermill."""
    import papermill

    from seresnet_lib.parameters import parameters_of, parse_value

    lessons = [path for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
               if papermill.inspect_notebook(str(path))]
    expected = {path: {name: parse_value(about["default"]) for name, about in papermill.inspect_notebook(
        str(path)).items()} for path in lessons}
    monkeypatch.setitem(sys.modules, "papermill", None)  # import papermill now fails
    assert len(lessons) == 3 and {path: parameters_of(path) for path in lessons} == expected
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(notebook, tmp_path / "plain.ipynb")
    with pytest.raises(ValueError, match="plain.ipynb has no cell tagged 'parameters'"):
        parameters_of(tmp_path / "plain.ipynb")
    (tmp_path / "broken.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match="broken.ipynb cannot be read as a notebook"):
        parameters_of(tmp_path / "broken.ipynb")

"""The two ways to install (pip and conda) ask for the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}


def package_name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {package_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}

    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda_names = {CONDA_TO_PIP.get(package_name(d), package_name(d)) for d in conda if isinstance(d, str)}
    conda_names -= {"python", "pip"}
    assert conda_names == pip_names

    pip_section = next(d["pip"] for d in conda if isinstance(d, dict))
    assert any(line.startswith("-e") and "[test]" in line for line in pip_section)


def test_python_pinned_to_3_11_for_conda():
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    assert "python=3.11" in conda

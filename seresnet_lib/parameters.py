"""Parameters as the lessons take them: one parser for a value written as text, a
notebook's ``parameters`` cell, and the names a notebook's cells have set.

Every wing reads parameters through here: ``-p NAME VALUE`` on any command line, the
defaults of a ``parameters`` cell, a cell of a sweep's ``results.csv``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import yaml
from yaml import MarkedYAMLError

from .paths import display

_WORDS = {"true": True, "false": False, "null": None, "none": None}

YAML_DEPTH = 32  # lists and mappings inside one another, in a YAML file or a value a sweep takes


class YamlRefused(MarkedYAMLError):
    """YAML that is valid but that the project's files do not take (``PlainYamlLoader``)."""


class PlainYamlLoader(yaml.SafeLoader):
    """YAML as the project's files write it: without anchors and aliases (``&a``, ``*a``), with which
    a few lines can stand for billions of values ("billion laughs"), refused when the parser meets
    the first, before anything is built; and lists and mappings at most ``YAML_DEPTH`` deep."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlRefused(problem="YAML anchors and aliases (&name, *name) are not allowed here: write each "
                                      "value out", problem_mark=event.start_mark)
        if self._depth >= YAML_DEPTH:
            raise YamlRefused(problem=f"lists and mappings nest more than {YAML_DEPTH} deep",
                              problem_mark=event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_value(text: str):
    """A parameter's value written as text, as Python or YAML would read it.

    A Python literal (``3``, ``0.01``, ``1e-3``, ``True``, ``None``, ``'cifar10'``, ``(1, 2)``),
    ``true``/``false``/``null`` as YAML and JSON spell them, or a YAML list or mapping
    (``[4]``); anything else is the text itself (``cifar10``, ``run-001``).
    """
    stripped = text.strip()
    try:
        return ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if stripped.lower() in _WORDS:
        return _WORDS[stripped.lower()]
    if stripped.startswith(("[", "{")):
        try:
            return yaml.load(stripped, Loader=PlainYamlLoader)
        except yaml.YAMLError:  # not YAML, or YAML with aliases or nested too deep
            pass
    return text


def parameters_of(notebook: Path) -> dict:
    """The notebook's parameters and their default values, read from its ``parameters`` cell.

    What papermill reads there (each top-level ``name = value``), read without papermill: a sweep
    inline, like lesson 06, runs on the core install.
    """
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
        source = next("".join(cell["source"]) for cell in cells
                      if "parameters" in cell.get("metadata", {}).get("tags", []))
    except StopIteration:
        raise ValueError(f"{display(notebook)} has no cell tagged 'parameters'") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{display(notebook)} cannot be read as a notebook ({type(error).__name__})") from None
    try:
        statements = ast.parse(source).body
    except SyntaxError as error:
        raise ValueError(f"{display(notebook)}: its parameters cell is not Python: {error}") from None
    defaults = {}
    for statement in statements:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name):
            defaults[target.id] = parse_value(ast.get_source_segment(source, value))
    return defaults


def is_cell_history(history) -> bool:
    """Whether ``history`` looks like IPython's ``In``: a list of cell sources."""
    return isinstance(history, list) and all(isinstance(source, str) for source in history)


def names_set_by_parameter_cells(history: list[str], parameters: set[str]) -> set[str]:
    """The names the latest run of a notebook's parameters cell assigned, with those of the cells
    run after it that set parameters (papermill's injected ``# Parameters`` cell, say).

    ``history`` is IPython's ``In``: the source of every cell run, the running one last. A cell
    sets parameters if it assigns one of ``parameters``, or is papermill's injected cell. Older
    runs of the parameters cell do not count: a misspelt name fixed since is no longer set.
    """
    assigned: set[str] = set()
    for source in reversed(history[:-1]):
        names = top_level_assignments(source)
        injected = source.lstrip().startswith("# Parameters")
        if injected or names & parameters:
            assigned |= names
            if not injected:
                break
    return assigned


def top_level_assignments(source: str) -> set[str]:
    """The names a cell assigns outside functions and classes (``x = 1``, ``x: int = 1``, ``a, b = ...``).

    A cell run under a cell magic (``%%time``) is read from the magic's body.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for statement in tree.body:
        if isinstance(statement, ast.Assign):
            names.update(*map(_bound_names, statement.targets))
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            names.update(_bound_names(statement.target))
        elif (isinstance(statement, ast.Expr) and isinstance(call := statement.value, ast.Call)
              and isinstance(call.func, ast.Attribute) and call.func.attr == "run_cell_magic"
              and len(call.args) == 3 and isinstance(body := call.args[2], ast.Constant)
              and isinstance(body.value, str)):
            names |= top_level_assignments(body.value)
    return names


def _bound_names(target: ast.expr) -> set[str]:
    """The variables an assignment target binds: ``x``, ``a, b``, ``[a, *rest]``; not ``obj.x`` or ``d[k]``."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*map(_bound_names, target.elts))
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return set()

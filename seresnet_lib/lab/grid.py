"""Sweep grids: which runs a grid file asks for, each checked before any starts.

A grid names, for each parameter that varies, the values to try: a mapping runs every
combination of them; a list of mappings runs the combinations of each in turn (the same
run named twice runs once). A grid file (YAML) holds the ``grid`` and optionally the
``notebook`` to run (lesson 05 by default), a ``preset`` and ``base`` parameters shared by
every run, its ``seeds`` and ``out_dir``.

A sweep is refused before any run starts if it is larger than sane: over 1,000 seeds, 1,000 values
of a parameter or 10,000 runs, a value over 10,000 characters written out, or a run whose folder
name would be over 255 characters. Its messages quote at most a value's first 80 characters.
"""

from __future__ import annotations

import builtins
import itertools
import json
import math
import re
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from ..parameters import YAML_DEPTH, parameters_of
from ..paths import LESSON_05, NOTEBOOKS
from ..training import TrainConfig, load_preset, read_yaml

SET_BY_SWEEP = ("seed", "out_dir", "resume")  # each run's seed and folder come from the sweep
_TRAINING = {f.name for f in fields(TrainConfig)}
_MAX_SEEDS = 1_000
_MAX_VALUES = 1_000  # of one parameter in one part of a grid
_MAX_RUNS = 10_000  # settings times seeds, counted before they are written out
_MAX_VALUE_CHARS = 10_000  # one value written out (JSON), each list in it as often as it appears
_NAME_MAX = 255  # a run's folder name, in bytes: the limit of Linux's, macOS's and Windows' file systems
_SEED_LIMIT = 2**32  # numpy's seeds, and TrainConfig's, are below it
_QUOTED = 80  # characters of a value a message quotes at most
_SPEC_TYPES = {"notebook": (str, "the notebook's file name"), "out_dir": (str, "a folder"),
               "base": (dict, "a mapping of parameter: value")}


@dataclass
class Trial:
    """One run of a sweep: the parameters the grid sets, and a seed."""

    varied: dict
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name, e.g. ``model=seresnet50-reduction=4-seed=0``."""
        parts = [f"{key}={as_text(value)}" for key, value in self.varied.items()] + [f"seed={self.seed}"]
        return re.sub(r"[^A-Za-z0-9=+._-]", "_", "-".join(parts))


def expand(grid: dict | list[dict], seeds: Iterable[int]) -> list[Trial]:
    """Every run of ``grid`` (a mapping of parameter -> list of values, or a list of such mappings)
    for every seed, in order, each once."""
    seeds, runs, seen = list(seeds), [], set()
    for part in _parts(grid):
        keys = list(part)
        for values in itertools.product(*(part[key] for key in keys)):
            for seed in seeds:
                run = Trial(dict(zip(keys, values)), seed)
                key = json.dumps([run.varied, seed], sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    runs.append(run)
    return runs


def notebook_parameters(notebook: Path) -> dict:
    """The parameters a sweep may set in ``notebook``, with their defaults: those of its ``parameters``
    cell; for a notebook whose parameters are ``TrainConfig``'s (lesson 05), all of ``TrainConfig``'s,
    the cell's defaults over the config's (its cell leaves the advanced ones out)."""
    cell = parameters_of(notebook)
    return {**TrainConfig().as_dict(), **cell} if trains_with_config(cell) else cell


def trains_with_config(cell: dict) -> bool:
    """Whether a parameters cell's names are ``TrainConfig``'s, as lesson 05's are."""
    return "out_dir" in cell and set(cell) <= _TRAINING


def check_grid(grid, base_params: dict, seeds, notebook: Path) -> list[Trial]:
    """The runs of the sweep, once every one is known to be valid; else ValueError naming the key.

    Keys must be parameters of ``notebook``, each with a non-empty list of values of the type
    its default has (a whole number where a float is expected is fine). For a notebook whose
    parameters are those of ``TrainConfig`` (lesson 05), each run's parameters are checked in full.
    """
    if isinstance(seeds, (list, tuple)) and len(seeds) > _MAX_SEEDS:
        raise ValueError(f"{len(seeds):,} seeds; a sweep takes at most {_MAX_SEEDS:,}")
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of whole numbers >= 0, got {_short(seeds)}")
    if max(seeds) >= _SEED_LIMIT:
        raise ValueError(f"seeds must be below 2**32 ({_SEED_LIMIT:,}), got {_short(max(seeds))}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat, got {_short(seeds)}")
    if not isinstance(base_params, dict):
        raise ValueError(f"base parameters must be a mapping of name -> value, got {_short(base_params)}")
    defaults = notebook_parameters(notebook)
    missing = [name for name in ("seed", "out_dir") if name not in defaults]
    if missing:
        raise ValueError(f"{Path(notebook).name} cannot be swept: its parameters cell has no {' or '.join(missing)} "
                         f"(each run needs its own seed and output folder)")
    for key in list(base_params) + [key for part in _parts(grid) for key in part]:
        if key in SET_BY_SWEEP:
            raise ValueError(f"{key} is set by the sweep for each run (seeds=..., out_dir=...); remove it from the "
                             f"grid and base parameters")
        if key not in defaults:
            raise ValueError(f"{_short(key)} is not a parameter of {Path(notebook).name}; its parameters are: "
                             f"{', '.join(defaults)}")
    for key, value in base_params.items():
        _check_value(key, value, defaults[key], "base parameter")
    for part in _parts(grid):
        for key, values in part.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid: {key} must be a non-empty list of values to try, got {_short(values)}")
            if len(values) > _MAX_VALUES:
                raise ValueError(f"grid: {key} has {len(values):,} values; a parameter takes at most {_MAX_VALUES:,}")
            for value in values:
                _check_value(key, value, defaults[key], "grid")
    settings = sum(math.prod(len(values) for values in part.values()) for part in _parts(grid))
    if settings * len(seeds) > _MAX_RUNS:
        raise ValueError(f"the grid asks for {settings * len(seeds):,} runs ({settings:,} settings x {len(seeds):,} "
                         f"seeds); a sweep runs at most {_MAX_RUNS:,}")
    runs = expand(grid, seeds)
    _check_folders(runs)
    if trains_with_config(defaults):
        for run in runs:
            try:
                TrainConfig(**{**defaults, **base_params, **run.varied, "seed": run.seed})
            except (TypeError, ValueError) as error:
                parameters = {**base_params, **run.varied}.values()
                raise ValueError(f"grid: the run {_cut(run.name)} is not valid: {_quoting_briefly(error, parameters)}"
                                 ) from None
        # a grid of model x reduction trains ResNet-50 (which has no reduction) once per seed, not once per r
        base = {**defaults, **base_params}
        runs = once_per_training(runs, lambda run: trial_parameters(run, base))
    return runs


def _check_folders(runs: list[Trial]) -> None:
    """Each run's folder name fits the file system (``_NAME_MAX``) and is its own."""
    folders = {}
    for run in runs:
        if len(run.name.encode()) > _NAME_MAX:
            longest = max(run.varied, key=lambda key: len(as_text(run.varied[key])), default="seed")
            raise ValueError(f"grid: the run {_cut(run.name)} needs a folder name of {len(run.name.encode()):,} "
                             f"characters, over the file system's limit of {_NAME_MAX}: shorten the values of "
                             f"{longest}")
        if run.name in folders:
            raise ValueError(f"grid: the runs {_cut(label(folders[run.name].varied))} and {_cut(label(run.varied))} "
                             f"would share the folder {_cut(run.name)}; use values that differ in letters, digits or "
                             f". _ + -")
        folders[run.name] = run


def load_grid_file(path: str | Path) -> dict:
    """A grid file: ``grid`` (required), and optionally ``notebook``, ``out_dir``, ``preset``, ``base`` and
    ``seeds``. ``preset`` names a preset file (relative to the grid file): its parameters are every run's,
    except those the sweep sets (seed, out_dir, resume); ``base`` overrides them."""
    path = Path(path)
    spec = read_yaml(path, "grid file")
    allowed = ("notebook", "grid", "base", "seeds", "out_dir", "preset")
    if "grid" not in spec:
        raise ValueError(f"{path} must be a mapping with a 'grid' key (and optionally {', '.join(allowed[2:])}, "
                         f"notebook)")
    unknown = sorted(map(str, set(spec) - set(allowed)))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {_cut(', '.join(unknown))}; allowed: {', '.join(allowed)}")
    preset = spec.get("preset")
    if preset is not None and not (isinstance(preset, str) and preset.endswith((".yaml", ".yml"))):
        raise ValueError(f"{path}: preset must name one preset file, e.g. reference.yaml, got {_short(preset)}")
    for key, (kind, what) in _SPEC_TYPES.items():
        if spec.get(key) is not None and not isinstance(spec[key], kind):
            raise ValueError(f"{path}: {key} must be {what}, got {_short(spec[key])}")
    return spec


def base_parameters(spec: dict, grid_file: str | Path) -> dict:
    """Every run's parameters from a grid file: its preset's (less what the sweep sets), then its ``base``."""
    preset = load_preset(Path(grid_file).parent / spec["preset"]) if spec.get("preset") else {}
    return {**{k: v for k, v in preset.items() if k not in SET_BY_SWEEP}, **(spec.get("base") or {})}


def notebook_for(name: str | None, grid_file: Path) -> Path:
    """The grid file's notebook: a path relative to the file's folder, the notebooks folder, or lesson 05."""
    if not name:
        return LESSON_05
    for candidate in (grid_file.parent / name, NOTEBOOKS / name, Path(name)):
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # a name too long for the file system, say
            continue
    raise FileNotFoundError(f"notebook {_short(name)} named in {grid_file} not found (looked beside it and in "
                            f"notebooks/)")


def _parts(grid) -> list[dict]:
    parts = grid if isinstance(grid, list) else [grid]
    if not parts or not all(isinstance(part, dict) and part for part in parts):
        raise ValueError(f"grid must be a mapping of parameter -> list of values, or a non-empty list of such "
                         f"mappings, got {_short(grid)}")
    return parts


def _check_value(key: str, value, default, where: str) -> None:
    """``value`` is of the type ``default`` has and at most ``_MAX_VALUE_CHARS`` long written out."""
    if _written_length(value, _MAX_VALUE_CHARS) > _MAX_VALUE_CHARS:
        raise ValueError(f"{where}: {key}={_short(value)} is over {_MAX_VALUE_CHARS:,} characters written out (or "
                         f"nests more than {YAML_DEPTH} deep)")
    expected = type(default)
    if default is None or value is None:
        return  # optional parameters (train_size = None) take numbers; the notebook checks further
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if expected in (list, tuple) and isinstance(value, (list, tuple)):
        return
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) and expected is float else ""
        raise ValueError(f"{where}: {key}={_short(value)} is a {type(value).__name__}, but {key} takes a "
                         f"{expected.__name__} (its default is {_short(default)}){hint}")


def _written_length(value, limit: int, lengths: dict | None = None, depth: int = 0) -> int:
    """About how many characters ``value`` takes written out as JSON, up to just past ``limit``.

    A list held in several places counts each time, but is measured once (``lengths``, by ``id``):
    a value built to stand for billions of items is measured in the time its parts take."""
    if isinstance(value, str):
        return len(value) + 2
    if _is_int(value):
        return value.bit_length() // 3 + 1  # at least its decimal digits
    if not isinstance(value, (list, tuple, dict)):
        return 8
    lengths = {} if lengths is None else lengths
    if id(value) not in lengths:
        lengths[id(value)] = limit + 1  # until measured: a list that holds itself never ends
        if depth < YAML_DEPTH:
            items, total = [*value.keys(), *value.values()] if isinstance(value, dict) else value, 2
            for item in items:
                total += _written_length(item, limit, lengths, depth + 1) + 2
                if total > limit:
                    break
            lengths[id(value)] = total
    return lengths[id(value)]


class _Bounded(reprlib.Repr):
    """``reprlib``'s bounded repr, for a whole number too, whose digits Python refuses past 4,300."""

    def repr_int(self, x, level):
        return builtins.repr(x) if x.bit_length() < 256 else f"<a number of {x.bit_length():,} bits>"


_REPR = _Bounded()
_REPR.maxstring = _REPR.maxother = _QUOTED


def _short(value) -> str:
    """``repr(value)`` in at most 80 characters ("…" where it is cut), without writing out the rest."""
    return _cut(_REPR.repr(value))


def _cut(text: str) -> str:
    """``text``, or its first 79 characters and "…"."""
    return text if len(text) <= _QUOTED else text[:_QUOTED - 1] + "…"


def _quoting_briefly(error: Exception, values: Iterable) -> str:
    """The message of ``error`` with each of ``values`` it quotes in full (``repr``) quoted by its start."""
    message = str(error)
    for value in values:
        quoted = repr(value)
        if len(quoted) > _QUOTED:
            message = message.replace(quoted, _short(value))
    return message


def trial_parameters(run: Trial, base_params: dict) -> dict:
    return json.loads(json.dumps({**base_params, **run.varied, "seed": run.seed}))  # tuples as lists, as JSON


def once_per_training(items: list, parameters) -> list:
    """``items`` without those that train exactly as an earlier one: the same ``parameters(item)``
    once the parameters its options ignore are set aside (see ``used_parameters``)."""
    seen, kept = set(), []
    for item in items:
        training = json.dumps(used_parameters(parameters(item)), sort_keys=True)
        if training not in seen:
            seen.add(training)
            kept.append(item)
    return kept


def used_parameters(parameters: dict) -> dict:
    """Lesson 05's parameters with those its options ignore (reduction for ResNet-50, say) as None."""
    try:
        unused = TrainConfig(**{**parameters, "device": "cpu"}).unused()
    except (TypeError, ValueError):  # not lesson 05's parameters
        return parameters
    return {k: None if k in unused else v for k, v in parameters.items()}


def label(varied: dict) -> str:
    """A setting as text: ``model=resnet50``, ``reduction=4 se_stages=4``; unused values left out."""
    return " ".join(f"{k}={as_text(v)}" for k, v in varied.items() if v is not None) or "(defaults)"


def as_text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value))
    return str(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""Sweeps: run a lesson once per combination of parameters and seed, then collect the results.

    python -m seresnet_lib.experiments notebooks/params/sweep_ablations.yaml
    python -m seresnet_lib.experiments notebooks/params/sweep_ablations.yaml --seeds 0 1 2 3 4 --jobs 2

A grid names, for each parameter that varies, the values to try: a mapping runs every
combination of them; a list of mappings runs the combinations of each in turn (the same
run named twice runs once). Every run executes the notebook through papermill into its own
folder, ``out_dir/<parameters>-seed=<seed>/``, holding the executed notebook, ``sweep.json``
(parameters, status, error, seconds) and the lesson's own run (``run-001/metrics.json``).
A run whose status is complete is skipped, so calling a sweep again resumes it.

Lesson 05's runs can also train inline (``runner="inline"``): through ``train.train_run``, in
this process (or each job's), the same data, model and ``fit`` as the executed lesson, without
a kernel start, imports and figures per run, which is most of a short run's time on a CPU.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import time
from collections.abc import Iterable
from contextlib import redirect_stderr, redirect_stdout
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import yaml

from .config import TrainConfig, load_preset, read_yaml
from .paths import NOTEBOOKS, display, resolve
from .runs import RunInUse, atomic_write, hold, read_metrics, run_folders

LESSON_05 = NOTEBOOKS / "05_train_cifar10.ipynb"
RECORD = "sweep.json"
RUNNERS = ("papermill", "inline")
SET_BY_SWEEP = ("seed", "out_dir", "resume")  # each run's seed and folder come from the sweep
RESULTS, SUMMARY = "results.csv", "summary.csv"
COLUMNS = ("final_test_acc", "best_test_acc", "model_parameters", "seconds", "status")
CURVE = "test_acc_by_epoch"  # a run's learning curve in results.csv: its test accuracies, separated by spaces


@dataclass
class Run:
    """One execution of the notebook: the parameters the grid sets, and a seed."""

    varied: dict
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name, e.g. ``model=seresnet50-reduction=4-seed=0``."""
        parts = [f"{key}={_text(value)}" for key, value in self.varied.items()] + [f"seed={self.seed}"]
        return re.sub(r"[^A-Za-z0-9=+._-]", "_", "-".join(parts))


@dataclass
class Outcome:
    """What became of one run: ``status`` complete, diverged, stopped or failed (``error`` says why),
    or skipped (complete before this sweep started)."""

    run: Run
    status: str
    seconds: float = 0.0
    error: str | None = None
    metrics: dict | None = field(default=None, repr=False)

    def line(self, index: int, total: int) -> str:
        where = f"[{index}/{total}] {self.run.name}:"
        if self.status == "skipped":
            return f"{where} complete before, skipped"
        accuracy = _final_accuracy(self.metrics)
        result = f", test acc {accuracy:.2%}" if accuracy is not None else ""
        why = f" ({self.error})" if self.error else ""
        return f"{where} {self.status}{result} in {self.seconds:.1f}s{why}"


def parameters_of(notebook: Path) -> dict:
    """The notebook's parameters and their default values, read from its ``parameters`` cell."""
    import papermill

    found = papermill.inspect_notebook(str(notebook))
    if not found:
        raise ValueError(f"{display(notebook)} has no cell tagged 'parameters' to sweep over")
    return {name: _literal(about["default"]) for name, about in found.items()}


def expand(grid: dict | list[dict], seeds: Iterable[int]) -> list[Run]:
    """Every run of ``grid`` (a mapping of parameter -> list of values, or a list of such mappings)
    for every seed, in order, each once."""
    seeds, runs, seen = list(seeds), [], set()
    for part in _parts(grid):
        keys = list(part)
        for values in itertools.product(*(part[key] for key in keys)):
            for seed in seeds:
                run = Run(dict(zip(keys, values)), seed)
                key = json.dumps([run.varied, seed], sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    runs.append(run)
    return runs


def check_grid(grid, base_params: dict, seeds, notebook: Path) -> list[Run]:
    """The runs of the sweep, once every one is known to be valid; else ValueError naming the key.

    Keys must be parameters of ``notebook``, each with a non-empty list of values of the type
    its default has (a whole number where a float is expected is fine). For a notebook whose
    parameters are those of ``TrainConfig`` (lesson 05), each run's parameters are checked in full.
    """
    if not isinstance(seeds, (list, tuple)) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of whole numbers >= 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat, got {seeds!r}")
    if not isinstance(base_params, dict):
        raise ValueError(f"base parameters must be a mapping of name -> value, got {base_params!r}")
    defaults = parameters_of(notebook)
    missing = [name for name in ("seed", "out_dir") if name not in defaults]
    if missing:
        raise ValueError(f"{Path(notebook).name} cannot be swept: its parameters cell has no {' or '.join(missing)} "
                         f"(each run needs its own seed and output folder)")
    for key in list(base_params) + [key for part in _parts(grid) for key in part]:
        if key in SET_BY_SWEEP:
            raise ValueError(f"{key} is set by the sweep for each run (seeds=..., out_dir=...); remove it from the "
                             f"grid and base parameters")
        if key not in defaults:
            raise ValueError(f"{key!r} is not a parameter of {Path(notebook).name}; its parameters are: "
                             f"{', '.join(defaults)}")
    for key, value in base_params.items():
        _check_type(key, value, defaults[key], "base parameter")
    for part in _parts(grid):
        for key, values in part.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"grid: {key} must be a non-empty list of values to try, got {values!r}")
            for value in values:
                _check_type(key, value, defaults[key], "grid")
    runs = expand(grid, seeds)
    folders = {}
    for run in runs:
        if run.name in folders:
            raise ValueError(f"grid: the runs {folders[run.name].varied} and {run.varied} would share the folder "
                             f"{run.name}; use values that differ in letters, digits or . _ + -")
        folders[run.name] = run
    if _is_lesson_05(notebook):
        for run in runs:
            try:
                TrainConfig(**{**defaults, **base_params, **run.varied, "seed": run.seed})
            except (TypeError, ValueError) as error:
                raise ValueError(f"grid: the run {run.name} is not valid: {error}") from None
        # a grid of model x reduction trains ResNet-50 (which has no reduction) once per seed, not once per r
        base = {**defaults, **base_params}
        runs = _once_per_training(runs, lambda run: _parameters(run, base))
    return runs


def sweep(notebook: str | Path, grid: dict | list[dict], out_dir: str | Path, base_params: dict | None = None,
          seeds: Iterable[int] = (0,), jobs: int = 1, runner: str = "papermill", progress=print) -> list[Outcome]:
    """Run ``notebook`` once per combination of ``grid`` and seed; the outcome of each run, in grid order.

    ``base_params`` are shared by every run. Runs already complete in ``out_dir`` are skipped;
    a run that fails or diverges is recorded (its error in ``sweep.json``) and the others go on.
    ``jobs`` runs that many at once, each in its own process with its share of the CPU threads.
    ``runner``: "papermill" executes the notebook per run; "inline" trains lesson 05's runs in this
    process (``train.train_run``, the numbers of the executed lesson) without a notebook per run.
    ``progress`` is called with one line per finished run. The grid is checked before any run starts.
    """
    notebook, out_dir, base_params = Path(notebook).resolve(), resolve(out_dir), dict(base_params or {})
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook {display(notebook)} to sweep over")
    if not _is_int(jobs) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if runner not in RUNNERS:
        raise ValueError(f"runner={runner!r} is not allowed; choose one of {', '.join(map(repr, RUNNERS))}")
    if runner == "inline" and not _is_lesson_05(notebook):
        raise ValueError(f"runner='inline' trains lesson 05's runs; {notebook.name}'s parameters are not "
                         f"lesson 05's: use runner='papermill'")
    runs = check_grid(grid, base_params, list(seeds), notebook)
    defaults = {k: v for k, v in parameters_of(notebook).items() if k not in SET_BY_SWEEP}
    base_params = {**defaults, **base_params}  # each run records every parameter it ran with
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes: dict[int, Outcome] = {}
    todo = []
    for index, run in enumerate(runs):
        record = _read_record(out_dir / run.name)
        metrics = _metrics(out_dir / run.name)
        if (record and record["status"] == "complete" and record["parameters"] == _parameters(run, base_params)
                and (metrics or {}).get("status") == "complete"):
            outcomes[index] = Outcome(run, "skipped", record["seconds"], metrics=metrics)
            progress(outcomes[index].line(index + 1, len(runs)))
        else:
            todo.append(index)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    arguments = [(notebook, out_dir / runs[i].name, runs[i], base_params, threads, runner) for i in todo]
    if jobs == 1:
        finished = ((i, execute_run(*args)) for i, args in zip(todo, arguments))
    else:  # spawned, not forked: a fork of a process whose OpenMP threads have run can hang
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
        futures = {pool.submit(execute_run, *args): i for i, args in zip(todo, arguments)}
        finished = ((futures[future], _outcome_of(future, runs[futures[future]])) for future in as_completed(futures))
    try:
        for index, outcome in finished:
            outcomes[index] = outcome
            progress(outcome.line(index + 1, len(runs)))
    finally:
        if jobs > 1:
            pool.shutdown(cancel_futures=True)
    return [outcomes[i] for i in range(len(runs))]


def _outcome_of(future, run: Run) -> Outcome:
    """A worker's outcome; a worker that died (out of memory, say) is a failed run, not a failed sweep."""
    try:
        return future.result()
    except Exception as failure:
        return Outcome(run, "failed", 0.0, f"{type(failure).__name__}: {_first_line(str(failure))}")


def execute_run(notebook: Path, run_dir: Path, run: Run, base_params: dict, threads: int | None = None,
                runner: str = "papermill") -> Outcome:
    """Execute ``notebook`` for ``run`` into ``run_dir`` and record its outcome in ``sweep.json``.

    The lesson writes its own run inside ``run_dir`` (``run-001/``); a stopped or failed run is
    started again from the beginning. ``threads``: the CPU threads its kernel may use.
    """
    parameters = _parameters(run, base_params)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        with hold(run_dir):
            (run_dir / RECORD).unlink(missing_ok=True)  # the record of an earlier attempt goes first
            for stale in run_folders(run_dir):  # then what that attempt trained
                shutil.rmtree(stale, ignore_errors=True)
            if threads is not None:
                for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                    os.environ[name] = str(threads)  # inherited by the kernel papermill starts
                torch.set_num_threads(threads)  # and used by an inline run
            run_notebook = _train_inline if runner == "inline" else _execute_notebook
            error = run_notebook(notebook, run_dir, {**parameters, "out_dir": str(run_dir)})
            metrics = _metrics(run_dir)
            status = (metrics or {}).get("status") or "failed"
            if status in ("complete", "running") and error:
                status = "failed"  # the lesson failed after training
            elif status == "running":
                status = "stopped"
            outcome = Outcome(run, status, round(time.perf_counter() - start, 1), error, metrics)
            record = dict(parameters=parameters, seed=run.seed, varied=run.varied, status=status, error=error,
                          seconds=outcome.seconds, notebook=notebook.name, runner=runner)
            atomic_write(run_dir / RECORD, lambda file: file.write(json.dumps(record, indent=2).encode()))
            return outcome
    except RunInUse as busy:
        return Outcome(run, "busy", 0.0, f"{busy}")


def _execute_notebook(notebook: Path, run_dir: Path, parameters: dict) -> str | None:
    """Execute ``notebook`` with ``parameters`` into ``run_dir``; its error as "Name: message", or None."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(notebook, run_dir / notebook.name, kernel_name="python3", cwd=notebook.parent,
                                   parameters=parameters, progress_bar=False)
    except PapermillExecutionError as failure:
        return f"{failure.ename}: {_first_line(failure.evalue)}"
    except Exception as failure:  # the kernel died, the notebook could not be read or written, ...
        return f"{type(failure).__name__}: {_first_line(str(failure))}"
    return None


def _train_inline(notebook: Path, run_dir: Path, parameters: dict) -> str | None:
    """Train lesson 05's run with ``parameters`` in this process, its printout in ``run_dir/log.txt``."""
    from .train import train_run

    with open(run_dir / "log.txt", "w") as log, redirect_stdout(log), redirect_stderr(log):
        try:
            train_run(TrainConfig(**{**parameters_of(notebook), **parameters}))
        except Exception as failure:
            print(f"{type(failure).__name__}: {failure}")
            return f"{type(failure).__name__}: {_first_line(str(failure))}"
    return None


def _is_lesson_05(notebook: Path) -> bool:
    return set(parameters_of(notebook)) == {f.name for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Row:
    """One run as ``collect`` reports it."""

    varied: dict
    seed: int
    final_test_acc: float | None
    best_test_acc: float | None
    model_parameters: int | None
    seconds: float
    status: str
    curve: list = field(default_factory=list, repr=False, compare=False)  # test accuracy per epoch

    def as_dict(self) -> dict:
        return {**{k: _text(v) for k, v in self.varied.items()}, "seed": self.seed,
                **{name: getattr(self, name) for name in COLUMNS}, CURVE: " ".join(map(str, self.curve))}


def collect(out_dir: str | Path, write: bool = True) -> list[Row]:
    """One row per run in ``out_dir``: the parameters that vary across its runs, the seed, final and
    best test accuracy, parameter count, seconds and status. Also writes ``results.csv`` (these rows)
    and ``summary.csv`` (mean and standard deviation over seeds, see ``summarize``) there."""
    out_dir = resolve(out_dir)
    records = [(folder, _read_record(folder)) for folder in sorted(out_dir.iterdir()) if folder.is_dir()] \
        if out_dir.is_dir() else []
    records = [(folder, record) for folder, record in records if record]
    if not records:
        raise FileNotFoundError(f"no sweep runs (folders with {RECORD}) in {display(out_dir)}")
    records = _once_per_training(records, lambda item: item[1]["parameters"])  # older grids may repeat one
    parameter_sets = [_used(record["parameters"]) for _, record in records]
    shared = _shared_parameters(parameter_sets)
    rows = []
    for (folder, record), parameters in zip(records, parameter_sets):
        metrics = _metrics(folder) or {}
        varied = {k: v for k, v in parameters.items() if k not in shared and k not in SET_BY_SWEEP}
        rows.append(Row(varied, record["seed"], _final_accuracy(metrics), metrics.get("best_test_acc"),
                        metrics.get("model_parameters"), record["seconds"], record["status"],
                        [epoch["test_acc"] for epoch in metrics.get("epochs", []) if epoch.get("test_acc") is not None]))
    rows.sort(key=lambda row: (_sort_key(row.varied), row.seed))
    if write:
        write_csv(out_dir / RESULTS, [row.as_dict() for row in rows])
        write_csv(out_dir / SUMMARY, summarize(rows))
    return rows


def load_results(path: str | Path) -> list[Row]:
    """The rows of a ``results.csv`` that ``collect`` wrote, with their learning curves where it holds them."""
    with open(path, newline="") as file:
        lines = list(csv.DictReader(file))
    if not lines or not {"seed", *COLUMNS} <= set(lines[0]):
        raise ValueError(f"{path} is not a results.csv written by collect(): it needs the columns seed, "
                         f"{', '.join(COLUMNS)}")
    numbers = {"final_test_acc": float, "best_test_acc": float, "model_parameters": int, "seconds": float}
    rows = []
    for line in lines:
        varied = {k: _value(v) for k, v in line.items() if k not in ("seed", CURVE, *COLUMNS)}
        values = {k: (numbers[k](line[k]) if line[k] else None) for k in numbers}
        curve = [float(value) for value in (line.get(CURVE) or "").split()]
        rows.append(Row(varied, int(line["seed"]), status=line["status"], curve=curve, **values))
    return rows


def summarize(rows: list[Row], metric: str = "final_test_acc") -> list[dict]:
    """One line per setting, over its complete runs: ``n`` runs, ``metric`` mean and sample standard
    deviation (None for a single run), parameter count, and how many runs did not complete."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(json.dumps(row.varied, sort_keys=True), []).append(row)
    summary = []
    for group in groups.values():
        done = [getattr(row, metric) for row in group if row.status == "complete" and getattr(row, metric) is not None]
        summary.append({**{k: _text(v) for k, v in group[0].varied.items()}, "n": len(done),
                        "mean": statistics.fmean(done) if done else None,
                        "std": statistics.stdev(done) if len(done) > 1 else None,
                        "model_parameters": group[0].model_parameters,
                        "not_complete": len(group) - len(done)})
    return summary


@dataclass(frozen=True)
class Comparison:
    """Setting b against setting a: the difference of their mean accuracies and its standard error."""

    a: str
    b: str
    difference: float
    standard_error: float
    runs: tuple[int, int]

    @property
    def exceeds_two_errors(self) -> bool:
        """Whether the difference is larger than two standard errors: larger than seeds alone tend to make."""
        return abs(self.difference) > 2 * self.standard_error

    def __str__(self) -> str:
        verdict = "larger" if self.exceeds_two_errors else "not larger"
        return (f"{self.b} vs {self.a}: {100 * self.difference:+.2f} points, standard error "
                f"{100 * self.standard_error:.2f} ({self.runs[1]} and {self.runs[0]} runs): {verdict} than two "
                f"standard errors")


def compare(rows: list[Row], a: dict, b: dict, metric: str = "final_test_acc") -> Comparison:
    """Setting ``b`` against setting ``a`` (each given by the parameters that pick its rows, e.g.
    ``{"model": "resnet50"}``), over their complete runs: mean(b) - mean(a), and the standard
    error of that difference, sqrt(s_a^2 / n_a + s_b^2 / n_b) with s the sample standard deviation."""
    values = []
    for setting in (a, b):
        matching = [row for row in rows if row.status == "complete"
                    and all(_text(row.varied.get(k)) == _text(v) for k, v in setting.items())]
        picked = [getattr(row, metric) for row in matching if getattr(row, metric) is not None]
        settings = {label(row.varied) for row in matching}
        if len(settings) > 1:
            raise ValueError(f"{setting} matches {len(settings)} settings ({'; '.join(sorted(settings))}); "
                             f"name more parameters to pick one")
        if len(picked) < 2:
            raise ValueError(f"{setting} has {len(picked)} complete run(s); a spread needs at least 2 "
                             f"(the settings are: {sorted({label(row.varied) for row in rows})})")
        values.append(picked)
    (first, second) = values
    error = math.sqrt(statistics.variance(first) / len(first) + statistics.variance(second) / len(second))
    return Comparison(label(a), label(b), statistics.fmean(second) - statistics.fmean(first), error,
                      (len(first), len(second)))


def table(summary: list[dict], metric: str = "test acc") -> str:
    """The summary as an aligned text table, accuracies as mean ± std in percent."""
    if not summary:
        return "(no runs)"
    keys = [k for k in summary[0] if k not in ("n", "mean", "std", "model_parameters", "not_complete")]
    header = keys + [f"{metric} (mean ± std)", "n", "parameters"]
    lines = [[*(str(line[k]) for k in keys), _mean_std(line["mean"], line["std"]),
              str(line["n"]) + (f" ({line['not_complete']} not complete)" if line["not_complete"] else ""),
              f"{line['model_parameters']:,}" if line["model_parameters"] else "-"] for line in summary]
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *lines])


def write_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def write(file):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        file.write(text.getvalue().encode())

    atomic_write(Path(path), write)


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
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    preset = spec.get("preset")
    if preset is not None and not (isinstance(preset, str) and preset.endswith((".yaml", ".yml"))):
        raise ValueError(f"{path}: preset must name one preset file, e.g. reference.yaml, got {preset!r}")
    return spec


def base_parameters(spec: dict, grid_file: str | Path) -> dict:
    """Every run's parameters from a grid file: its preset's (less what the sweep sets), then its ``base``."""
    preset = load_preset(Path(grid_file).parent / spec["preset"]) if spec.get("preset") else {}
    return {**{k: v for k, v in preset.items() if k not in SET_BY_SWEEP}, **(spec.get("base") or {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seresnet_lib.experiments",
        description="Run a lesson once per combination of a grid file's parameters and seed (through papermill), "
                    "skipping runs already complete, then print the results averaged over seeds and write "
                    "results.csv and summary.csv in the sweep's folder.",
        epilog="example: python -m seresnet_lib.experiments notebooks/params/sweep_ablations.yaml --seeds 0 1 2")
    parser.add_argument("grid_file", help="YAML with grid: (a mapping of parameter -> values, or a list of them), "
                                          "and optionally preset:, base:, seeds:, out_dir:, notebook:")
    parser.add_argument("--seeds", type=int, nargs="+", help="the seeds each setting runs with (default: the file's, "
                                                             "else 0)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process (default 1)")
    parser.add_argument("--out-dir", help="the sweep's folder (default: the file's out_dir, else runs/sweeps/<file>)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a base parameter for every run, read as YAML (-p epochs 3 -p dataset cifar10)")
    parser.add_argument("--runner", choices=RUNNERS, default="papermill",
                        help="papermill: execute the notebook per run (default); inline: train lesson 05's runs in "
                             "this process, without a notebook per run")
    parser.add_argument("--collect", action="store_true", help="only collect and print the results of the runs so far")
    args = parser.parse_args(argv)
    try:
        spec = load_grid_file(args.grid_file)
        out_dir = args.out_dir or spec.get("out_dir") or f"runs/sweeps/{Path(args.grid_file).stem}"
        if not args.collect:
            base = {**base_parameters(spec, args.grid_file),
                    **{name: yaml.safe_load(value) for name, value in args.parameter}}
            notebook = _notebook(spec.get("notebook"), Path(args.grid_file))
            outcomes = sweep(notebook, spec["grid"], out_dir, base, args.seeds or spec.get("seeds") or [0], args.jobs,
                             args.runner, progress=lambda line: print(line, flush=True))
        rows = collect(out_dir)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{table(summarize(rows))}\n\nresults: {display(resolve(out_dir) / RESULTS)}, "
          f"{display(resolve(out_dir) / SUMMARY)}")
    if not args.collect and any(o.status not in ("complete", "skipped") for o in outcomes):
        failed = [o for o in outcomes if o.status not in ("complete", "skipped")]
        print(f"{len(failed)} run(s) did not complete: {', '.join(o.run.name for o in failed)}", file=sys.stderr)
        return 1
    return 0


def _notebook(name: str | None, grid_file: Path) -> Path:
    """The grid file's notebook: a path relative to the file's folder, the notebooks folder, or lesson 05."""
    if not name:
        return LESSON_05
    for candidate in (grid_file.parent / name, LESSON_05.parent / name, Path(name)):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"notebook {name!r} named in {grid_file} not found (looked beside it and in notebooks/)")


def _parts(grid) -> list[dict]:
    parts = grid if isinstance(grid, list) else [grid]
    if not parts or not all(isinstance(part, dict) and part for part in parts):
        raise ValueError(f"grid must be a mapping of parameter -> list of values, or a non-empty list of such "
                         f"mappings, got {grid!r}")
    return parts


def _check_type(key: str, value, default, where: str) -> None:
    expected = type(default)
    if default is None or value is None:
        return  # optional parameters (train_size = None) take numbers; the notebook checks further
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return
    if expected in (list, tuple) and isinstance(value, (list, tuple)):
        return
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) and expected is float else ""
        raise ValueError(f"{where}: {key}={value!r} is a {type(value).__name__}, but {key} takes a "
                         f"{expected.__name__} (its default is {default!r}){hint}")


def _parameters(run: Run, base_params: dict) -> dict:
    return json.loads(json.dumps({**base_params, **run.varied, "seed": run.seed}))  # tuples as lists, as JSON


def _read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def _metrics(run_dir: Path) -> dict | None:
    """The metrics.json of the lesson's newest run inside a sweep run's folder."""
    folders = run_folders(run_dir)
    return read_metrics(folders[-1]) if folders else None


def _final_accuracy(metrics: dict | None) -> float | None:
    epochs = [epoch for epoch in (metrics or {}).get("epochs", []) if epoch.get("test_acc") is not None]
    return epochs[-1]["test_acc"] if epochs else None


def _once_per_training(items: list, parameters) -> list:
    """``items`` without those that train exactly as an earlier one: the same ``parameters(item)``
    once the parameters its options ignore are set aside (see ``_used``)."""
    seen, kept = set(), []
    for item in items:
        training = json.dumps(_used(parameters(item)), sort_keys=True)
        if training not in seen:
            seen.add(training)
            kept.append(item)
    return kept


def _used(parameters: dict) -> dict:
    """Lesson 05's parameters with those its options ignore (reduction for ResNet-50, say) as None."""
    try:
        unused = TrainConfig(**{**parameters, "device": "cpu"}).unused()
    except (TypeError, ValueError):  # not lesson 05's parameters
        return parameters
    return {k: None if k in unused else v for k, v in parameters.items()}


def label(varied: dict) -> str:
    """A setting as text: ``model=resnet50``, ``reduction=4 se_stages=4``; unused values left out."""
    return " ".join(f"{k}={_text(v)}" for k, v in varied.items() if v is not None) or "(defaults)"


def _shared_parameters(parameter_sets: list[dict]) -> set[str]:
    """The parameters every run has the same value of (runs that ignore one do not count)."""
    keys = set().union(*parameter_sets)
    values = {key: {json.dumps(p.get(key)) for p in parameter_sets if p.get(key) is not None} for key in keys}
    return {key for key in keys if len(values[key]) <= 1}


def _sort_key(varied: dict):
    """Numbers in numeric order (4 before 16), other values by their text."""
    def order(value):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (0, value, "") if number else (1, 0, _text(value))
    return [(key, order(value)) for key, value in sorted(varied.items())]


def _text(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value))
    return str(value)


def _value(text: str):
    """A parameter as results.csv writes it, read back: 16 -> 16, "True" -> True, "-" -> None, "1+2+3+4"
    stays text."""
    if text == "-":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2%} ± {std:.2%}" if std is not None else f"{mean:.2%}"


def _literal(text: str):
    """A default from papermill's inspection (source text) as a Python value, when it is a literal."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


if __name__ == "__main__":
    sys.exit(main())

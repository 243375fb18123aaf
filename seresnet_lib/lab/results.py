"""A sweep's results: one row per run (``results.csv``), the mean and spread over seeds
(``summary.csv``), and the difference of two settings against the spread of seeds."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..parameters import parse_value
from ..paths import display, resolve
from ..training import atomic_write, read_metrics, run_folders
from .grid import SET_BY_SWEEP, as_text, label, once_per_training, used_parameters

RECORD = "sweep.json"  # each run's record in its folder: parameters, status, error, seconds
RESULTS_CSV, SUMMARY_CSV = "results.csv", "summary.csv"
_COLUMNS = ("final_test_acc", "best_test_acc", "model_parameters", "seconds", "status")
_CURVE = "test_acc_by_epoch"  # a run's learning curve in results.csv: its test accuracies, separated by spaces


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

    @property
    def setting(self) -> str:
        """The parameters that vary, as text: what plots and tables group the runs by."""
        return label(self.varied)

    def as_dict(self) -> dict:
        return {**{k: as_text(v) for k, v in self.varied.items()}, "seed": self.seed,
                **{name: getattr(self, name) for name in _COLUMNS}, _CURVE: " ".join(map(str, self.curve))}


def collect(out_dir: str | Path, write: bool = True) -> list[Row]:
    """One row per run in ``out_dir``: the parameters that vary across its runs, the seed, final and
    best test accuracy, parameter count, seconds and status. Also writes ``results.csv`` (these rows)
    and ``summary.csv`` (mean and standard deviation over seeds, see ``summarize``) there."""
    out_dir = resolve(out_dir)
    records = [(folder, read_record(folder)) for folder in sorted(out_dir.iterdir()) if folder.is_dir()] \
        if out_dir.is_dir() else []
    records = [(folder, record) for folder, record in records if record]
    if not records:
        raise FileNotFoundError(f"no sweep runs (folders with {RECORD}) in {display(out_dir)}")
    records = once_per_training(records, lambda item: item[1]["parameters"])  # older grids may repeat one
    parameter_sets = [used_parameters(record["parameters"]) for _, record in records]
    shared = _shared_parameters(parameter_sets)
    rows = []
    for (folder, record), parameters in zip(records, parameter_sets):
        metrics = trial_metrics(folder) or {}
        varied = {k: v for k, v in parameters.items() if k not in shared and k not in SET_BY_SWEEP}
        rows.append(Row(varied, record["seed"], final_accuracy(metrics), metrics.get("best_test_acc"),
                        metrics.get("model_parameters"), record["seconds"], record["status"],
                        [epoch["test_acc"] for epoch in metrics.get("epochs", []) if epoch.get("test_acc") is not None]))
    rows.sort(key=lambda row: (_sort_key(row.varied), row.seed))
    if write:
        write_rows_csv(out_dir / RESULTS_CSV, [row.as_dict() for row in rows])
        write_rows_csv(out_dir / SUMMARY_CSV, summarize(rows))
    return rows


def load_results(path: str | Path) -> list[Row]:
    """The rows of a ``results.csv`` that ``collect`` wrote, with their learning curves where it holds them."""
    with open(path, newline="") as file:
        lines = list(csv.DictReader(file))
    if not lines or not {"seed", *_COLUMNS} <= set(lines[0]):
        raise ValueError(f"{path} is not a results.csv written by collect(): it needs the columns seed, "
                         f"{', '.join(_COLUMNS)}")
    numbers = {"final_test_acc": float, "best_test_acc": float, "model_parameters": int, "seconds": float}
    rows = []
    for line in lines:
        varied = {k: _read_value(v) for k, v in line.items() if k not in ("seed", _CURVE, *_COLUMNS)}
        values = {k: (numbers[k](line[k]) if line[k] else None) for k in numbers}
        curve = [float(value) for value in (line.get(_CURVE) or "").split()]
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
        summary.append({**{k: as_text(v) for k, v in group[0].varied.items()}, "n": len(done),
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
                    and all(as_text(row.varied.get(k)) == as_text(v) for k, v in setting.items())]
        picked = [getattr(row, metric) for row in matching if getattr(row, metric) is not None]
        settings = {row.setting for row in matching}
        if len(settings) > 1:
            raise ValueError(f"{setting} matches {len(settings)} settings ({'; '.join(sorted(settings))}); "
                             f"name more parameters to pick one")
        if len(picked) < 2:
            raise ValueError(f"{setting} has {len(picked)} complete run(s); a spread needs at least 2 "
                             f"(the settings are: {sorted({row.setting for row in rows})})")
        values.append(picked)
    (first, second) = values
    error = math.sqrt(statistics.variance(first) / len(first) + statistics.variance(second) / len(second))
    return Comparison(label(a), label(b), statistics.fmean(second) - statistics.fmean(first), error,
                      (len(first), len(second)))


def results_table(summary: list[dict], metric: str = "test acc") -> str:
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


def write_rows_csv(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))

    def write(file):
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        file.write(text.getvalue().encode())

    atomic_write(Path(path), write)


def read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def trial_metrics(run_dir: Path) -> dict | None:
    """The metrics.json of the lesson's newest run inside a sweep run's folder."""
    folders = run_folders(run_dir)
    return read_metrics(folders[-1]) if folders else None


def final_accuracy(metrics: dict | None) -> float | None:
    epochs = [epoch for epoch in (metrics or {}).get("epochs", []) if epoch.get("test_acc") is not None]
    return epochs[-1]["test_acc"] if epochs else None


def _shared_parameters(parameter_sets: list[dict]) -> set[str]:
    """The parameters every run has the same value of (runs that ignore one do not count)."""
    keys = set().union(*parameter_sets)
    values = {key: {json.dumps(p.get(key)) for p in parameter_sets if p.get(key) is not None} for key in keys}
    return {key for key in keys if len(values[key]) <= 1}


def _sort_key(varied: dict):
    """Numbers in numeric order (4 before 16), other values by their text."""
    def order(value):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (0, value, "") if number else (1, 0, as_text(value))
    return [(key, order(value)) for key, value in sorted(varied.items())]


def _read_value(text: str):
    """A parameter as ``Row.as_dict`` writes it, read back: "-" (unused) is None, "1+2+3+4" stays text."""
    return None if text == "-" else parse_value(text)


def _mean_std(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.2%} ± {std:.2%}" if std is not None else f"{mean:.2%}"

"""The lab, for people running experiments: sweeps of a lesson over a grid of parameters and
seeds (in this process, in several, or as the tasks of a Ray cluster), their results (tables, mean
and spread over seeds, comparisons), the reference run's measurements, and the benchmark. It trains
through the training wing."""

from ..paths import LESSON_05, RESULTS
from .grid import check_grid, expand, label, load_grid_file
from .reference import Reference, load_reference, switch_off_table
from .results import Comparison, Row, collect, compare, load_results, results_table, summarize
from .sweep import RUNNERS, TrialOutcome, sweep

__all__ = [
    "Comparison", "LESSON_05", "RESULTS", "RUNNERS", "Reference", "Row", "TrialOutcome", "check_grid", "collect",
    "compare", "expand", "label", "load_grid_file", "load_reference", "load_results", "results_table", "summarize",
    "sweep", "switch_off_table",
]

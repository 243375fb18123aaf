"""The classroom, for teachers and students: the exercises' self-checks, student copies of
the lessons, grading the copies students hand back, and running the whole series.

Every lesson imports the self-checks; the rest loads Jupyter's machinery (nbformat, nbclient,
papermill), so it is imported when one of its names is first asked for, not with the checks.
"""

import importlib

from . import checks
from .checks import CHECK_MIME, CheckResult

_LATER = {"student_copy": "copies", "write_student_copies": "copies", "Grade": "gradebook",
          "check_notebooks": "grading", "grades_table": "grading", "write_grades_csv": "gradebook",
          "lessons": "series", "record_lessons": "series", "run_series": "series"}

__all__ = ["CHECK_MIME", "CheckResult", "checks", *_LATER]


def __getattr__(name: str):
    if name in _LATER:
        return getattr(importlib.import_module(f".{_LATER[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The classroom, for teachers and students: the exercises' self-checks, student copies of
the lessons, grading the copies students hand back, and running the whole series."""

from . import checks
from .checks import CHECK_MIME, CheckResult
from .copies import student_copy, write_student_copies
from .grading import Grade, check_notebooks, grades_table, write_grades_csv
from .series import lessons, record_lessons, run_series

__all__ = [
    "CHECK_MIME", "CheckResult", "Grade", "check_notebooks", "checks", "grades_table", "lessons", "record_lessons",
    "run_series", "student_copy", "write_grades_csv", "write_student_copies",
]

"""The base class of every error a user must fix, rather than a bug to report.

A file, a row, a setting, an endpoint, a budget, a saved run: the message names which and says what to do.
Entry points print it in one place (hakim.cli.errors.one_line_errors) as `error: <Type>: <message>` and
exit 1; its traceback is of no use to the user and goes nowhere. Anything else is a bug: the same line is
printed, and the traceback goes to the run's log file.
"""


class HakimError(Exception):
    """A problem the user must fix; its message says where and how."""

"""Errors of the edgebench harness, shown to users as one line each and an exit code.

EdgebenchError          anything the user can fix; the CLI prints `Error: ...`
 └── ScenarioError      a scenario file's problems, one line each (exit code 2)
"""

from __future__ import annotations


class EdgebenchError(Exception):
    """EdgebenchError is the base of every harness error meant for a user."""

    exit_code = 2


class ScenarioError(EdgebenchError):
    """ScenarioError lists every problem found in a scenario, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))

"""Scenario files: who the players are and how hard to push (format: scenarios/README.md).

    scenario = load_scenario("scenarios/smoke.toml")
    scenario.rate.stages[0].duration_s   # 10.0

Every problem in a file is reported, one line each, as
`<file>: <key>: <problem>; <fix>` (ScenarioError.problems).

The jobs live apart: the schema (_schema), reading a file and its digests (_files),
pydantic's errors as one line each (_problems), command-line overrides (overrides).
This module is their one public face.
"""

from edgebench.plan._files import load_scenario
from edgebench.plan._schema import DEFAULT_LIMIT, Scenario
from edgebench.plan.overrides import (
    Overrides,
    planned,
    with_duration,
    with_rate,
    with_world,
)
from edgebench.plan.times import parse_duration

__all__ = [
    "DEFAULT_LIMIT",
    "Overrides",
    "Scenario",
    "load_scenario",
    "parse_duration",
    "planned",
    "with_duration",
    "with_rate",
    "with_world",
]

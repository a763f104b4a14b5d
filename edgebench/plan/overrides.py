"""What a command line changes in a scenario: one value, applied in one order everywhere.

`edgebench run`, `simulate`, `search`, the locustfile and a worker all build an
Overrides from their options and apply it, so a scenario means the same in each:

    overrides = Overrides(duration="2m", rate_factor="1.5")
    scenario = planned("scenarios/smoke.toml", overrides)   # = apply(load_scenario(...), ...)

Errors name the option (`--duration '2x': not a duration; ...`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench._errors import EdgebenchError
from edgebench.plan._files import load_scenario, with_fleets
from edgebench.plan._schema import Scenario
from edgebench.plan.times import parse_duration


@dataclass(frozen=True)
class Overrides:
    """Overrides are the options that change a scenario; None (or blank) keeps the file's."""

    duration: str | None = None
    world: str | Path | None = None
    seed: int | str | None = None
    rate_mode: str | None = None
    rate_factor: str | None = None
    limit: int | str | None = None  # the organisation's requests a second on each deploy route
    costs: str | Path | None = None  # a TOML file of prices ([costs]) instead of the scenario's

    @classmethod
    def of(cls, plan: Any) -> Overrides:
        """of reads a command's plan (run, simulate, search): its fields of the same names."""
        return cls(*(getattr(plan, name, None) for name in OVERRIDDEN))


OVERRIDDEN = tuple(Overrides.__dataclass_fields__)


def overrides_at(plan: Any, **knob: object) -> dict[str, Any]:
    """overrides_at are a command's every override with a varied knob's value over them:
    what each probe run live, a confirming run and a printed rerun take, so none drops an
    option the user gave (a rate factor, a limit, a world, prices)."""
    given = {name: getattr(plan, name, None) for name in OVERRIDDEN}
    return given | knob


def override_words(overrides: dict[str, Any]) -> list[str]:
    """override_words are the command-line options that set the overrides given (not None
    or blank), as `edgebench run` and `simulate` take them.

    >>> override_words({"rate_factor": "1.5", "seed": 3, "world": None})
    ['--rate-factor', '1.5', '--seed', '3']
    """
    words: list[str] = []
    for name, value in overrides.items():
        if value is not None and value != "":
            words += [f"--{name.replace('_', '-')}", str(value)]
    return words


def planned(path: str | Path, overrides: Overrides) -> Scenario:
    """planned is the scenario file at path with the overrides applied."""
    return apply(load_scenario(path), overrides)


def apply(scenario: Scenario, overrides: Overrides) -> Scenario:
    """apply is the scenario with every override set: its length, world, seed and rate."""
    if overrides.duration:
        scenario = with_duration(scenario, overrides.duration)
    if overrides.world:
        scenario = with_world(scenario, overrides.world)
    scenario = with_seed(scenario, overrides.seed)
    scenario = with_limit(scenario, overrides.limit)
    if overrides.costs:
        scenario = with_costs(scenario, overrides.costs)
    return with_rate(scenario, overrides.rate_mode or "", overrides.rate_factor or "")


def with_limit(scenario: Scenario, limit: int | str | None) -> Scenario:
    """with_limit is the scenario under another organisation limit (None or blank: its own):
    what respect mode holds to, and the embedded emulator and the simulator enforce."""
    if limit is None or limit == "":
        return scenario
    try:
        value = int(limit)
    except ValueError:
        value = 0
    if value < 1:
        raise EdgebenchError(f"--limit {limit!r}: not a whole number of requests/s >= 1; e.g. 52")
    return scenario.model_copy(update={"rate": scenario.rate.model_copy(update={"limit": value})})


def with_costs(scenario: Scenario, path: str | Path) -> Scenario:
    """with_costs is the scenario priced by a costs file: its [costs] table (or top level)."""
    import tomllib

    from pydantic import ValidationError

    from edgebench.plan._schema import Costs

    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EdgebenchError(f"--costs {path}: no such file; give a costs file's path") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EdgebenchError(f"--costs {path}: cannot read it ({exc}); fix the file") from None
    table = raw.get("costs", raw)
    try:
        costs = Costs.model_validate(table)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("costs", *first["loc"]))
        raise EdgebenchError(f"--costs {path}: {where}: {first['msg']}") from None
    return scenario.model_copy(update={"costs": costs})


def with_duration(scenario: Scenario, text: str) -> Scenario:
    """with_duration is the scenario run for `text` (e.g. "15s") instead of its own length."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise EdgebenchError(
            f"--duration {text!r}: not a duration; write seconds or e.g. 15s, 2m, 1h30m"
        ) from None
    if seconds <= 0:
        raise EdgebenchError(f"--duration {text!r}: must be positive; e.g. 15s")
    return scenario.model_copy(update={"duration": seconds})


def with_rate(scenario: Scenario, mode: str = "", factor: str = "") -> Scenario:
    """with_rate is the scenario with its rate mode and/or factor replaced (blank: keep)."""
    update: dict[str, Any] = {}
    if mode:
        if mode not in ("respect", "exceed"):
            raise EdgebenchError(f"--rate-mode {mode!r}: not a mode; use respect or exceed")
        update["mode"] = mode
    if factor:
        try:
            update["factor"] = float(factor)
        except ValueError:
            update["factor"] = math.nan
        if not update["factor"] > 0:
            raise EdgebenchError(f"--rate-factor {factor!r}: not a number above 0; e.g. 1.5")
    if not update:
        return scenario
    return scenario.model_copy(update={"rate": scenario.rate.model_copy(update=update)})


def with_world(scenario: Scenario, world: str | Path) -> Scenario:
    """with_world is the scenario with another world file (a path from the current folder)."""
    path = Path(world)
    if not path.is_file():
        raise EdgebenchError(f"--world {world}: no such file; give a world file's path")
    target = scenario.target.model_copy(update={"world": str(path.resolve())})
    return with_fleets(scenario.model_copy(update={"target": target}))


def with_seed(scenario: Scenario, seed: int | str | None) -> Scenario:
    """with_seed is the scenario with another seed (None or blank: keep its own)."""
    if seed is None or seed == "":
        return scenario
    try:
        return scenario.model_copy(update={"seed": int(seed)})
    except ValueError:
        raise EdgebenchError(f"--seed {seed!r}: not a whole number; e.g. 7") from None

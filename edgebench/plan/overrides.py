"""What a command line changes in a scenario: one value, applied in one order everywhere.

`edgebench run`, `simulate`, `search`, the locustfile and a worker all build an
Overrides from their options and apply it, so a scenario means the same in each:

    overrides = Overrides(duration="2m", rate_factor="1.5")
    scenario = planned("scenarios/smoke.toml", overrides)   # set on the file's table, then checked

Errors name the option (`--duration '2x': not a duration; ...`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
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

    def absolute(self) -> Overrides:
        """absolute is the same overrides with their files' paths absolute: what another
        process, started elsewhere, opens."""
        world, costs = (  # a missing one keeps its name as typed, for the error naming it
            Path(f).resolve() if f and Path(f).is_file() else f for f in (self.world, self.costs)
        )
        return replace(self, world=world, costs=costs)


OVERRIDDEN = tuple(Overrides.__dataclass_fields__)


@dataclass(frozen=True)
class RunSpec:
    """RunSpec is a run as a command resolved it: the scenario file and every override.
    It crosses to the Locust processes (and the workers, in Locust's options) and to the
    embedded emulator as one JSON text, so each resolves the very same scenario:

        spec = RunSpec("scenarios/smoke.toml", Overrides(limit=52))
        RunSpec.loads(spec.dumps()) == spec   # True
    """

    scenario: str
    overrides: Overrides = Overrides()

    def resolve(self) -> Scenario:
        return planned(self.scenario, self.overrides)

    def given(self) -> dict[str, Any]:
        """given are the overrides set (not None or blank), as JSON values."""
        fields = {name: getattr(self.overrides, name) for name in OVERRIDDEN}
        return {
            name: str(value) if isinstance(value, Path) else value
            for name, value in fields.items()
            if value is not None and value != ""
        }

    def given_run(self) -> dict[str, Any]:
        """given_run is what a manifest records of the run: the file and the overrides set."""
        return {"scenario": self.scenario, "overrides": self.given()}

    def dumps(self) -> str:
        import orjson

        return orjson.dumps(self.given_run()).decode()

    @classmethod
    def loads(cls, text: str) -> RunSpec:
        import orjson

        try:
            raw = orjson.loads(text)
            return cls(str(raw["scenario"]), Overrides(**raw.get("overrides", {})))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise EdgebenchError(
                f"--run-spec: not a run `edgebench run` wrote ({exc}); leave it to edgebench"
            ) from None

    def over(self, overrides: Overrides) -> RunSpec:
        """over is the spec with the overrides given (not None or blank) over its own: what a
        web UI's start form changes."""
        given = {
            name: value
            for name in OVERRIDDEN
            if (value := getattr(overrides, name)) is not None and value != ""
        }
        return RunSpec(self.scenario, replace(self.overrides, **given))


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
    """planned is the scenario file at path with the overrides set on what it says, checked
    once as a whole (every cross-field check sees the final values), its world loaded and
    its fleets resolved once, from the final world (--world may stand in for a missing one)."""
    return load_scenario(path, edit=lambda raw: overridden(raw, overrides))


def overridden(raw: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """overridden is a scenario file's table with every override set, each checked first on
    its own (its error names the option)."""
    raw = raw | {"target": dict(raw.get("target", {})), "rate": dict(raw.get("rate", {}))}
    if overrides.duration:
        raw["duration"] = _seconds(overrides.duration)
    if overrides.world:
        raw["target"]["world"] = str(_world_path(overrides.world))
    if overrides.seed is not None and overrides.seed != "":
        raw["seed"] = _seed(overrides.seed)
    if overrides.limit is not None and overrides.limit != "":
        raw["rate"]["limit"] = _limit(overrides.limit)
    if overrides.costs:
        raw["costs"] = _costs_table(overrides.costs)
    if overrides.rate_mode:
        raw["rate"]["mode"] = _mode(overrides.rate_mode)
    if overrides.rate_factor:
        raw["rate"]["factor"] = _factor(overrides.rate_factor)
    return raw


def revised(scenario: Scenario, **update: Any) -> Scenario:
    """revised is the scenario with fields replaced and checked again as a whole (a probe's
    knob passes every cross-field check the file's own values do)."""
    from pydantic import ValidationError

    from edgebench._errors import ScenarioError
    from edgebench.plan._problems import problem

    try:
        return Scenario.model_validate(dict(scenario) | update)
    except ValidationError as exc:
        source = Path(scenario.source or "scenario")
        raise ScenarioError([problem(source, dict(error)) for error in exc.errors()]) from None


def _revised_rate(scenario: Scenario, **update: Any) -> Scenario:
    from edgebench.plan._schema import Rate

    return revised(scenario, rate=Rate.model_validate(dict(scenario.rate) | update))


def with_limit(scenario: Scenario, limit: int | str | None) -> Scenario:
    """with_limit is the scenario under another organisation limit (None or blank: its own):
    what respect mode holds to, and the embedded emulator and the simulator enforce."""
    if limit is None or limit == "":
        return scenario
    return _revised_rate(scenario, limit=_limit(limit))


def with_duration(scenario: Scenario, text: str) -> Scenario:
    """with_duration is the scenario run for `text` (e.g. "15s") instead of its own length."""
    return revised(scenario, duration=_seconds(text))


def with_rate(scenario: Scenario, mode: str = "", factor: str = "") -> Scenario:
    """with_rate is the scenario with its rate mode and/or factor replaced (blank: keep)."""
    update: dict[str, Any] = {}
    if mode:
        update["mode"] = _mode(mode)
    if factor:
        update["factor"] = _factor(factor)
    return _revised_rate(scenario, **update) if update else scenario


def with_world(scenario: Scenario, world: str | Path) -> Scenario:
    """with_world is the scenario with another world file (a path from the current folder),
    its fleets resolved from it."""
    target = scenario.target.model_copy(update={"world": str(_world_path(world))})
    return with_fleets(revised(scenario, target=target))


def _limit(limit: int | str) -> int:
    try:
        value = int(limit)
    except ValueError:
        value = 0
    if value < 1:
        raise EdgebenchError(f"--limit {limit!r}: not a whole number of requests/s >= 1; e.g. 52")
    return value


def _costs_table(path: str | Path) -> dict[str, Any]:
    """_costs_table is a costs file's [costs] table (or its top level), checked."""
    import tomllib

    from pydantic import ValidationError

    from edgebench.plan._schema import Costs

    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EdgebenchError(f"--costs {path}: no such file; give a costs file's path") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EdgebenchError(f"--costs {path}: cannot read it ({exc}); fix the file") from None
    table: dict[str, Any] = raw.get("costs", raw)
    try:
        Costs.model_validate(table)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in ("costs", *first["loc"]))
        raise EdgebenchError(f"--costs {path}: {where}: {first['msg']}") from None
    return table


def _seconds(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise EdgebenchError(
            f"--duration {text!r}: not a duration; write seconds or e.g. 15s, 2m, 1h30m"
        ) from None
    if seconds <= 0:
        raise EdgebenchError(f"--duration {text!r}: must be positive; e.g. 15s")
    return seconds


def _mode(mode: str) -> str:
    if mode not in ("respect", "exceed"):
        raise EdgebenchError(f"--rate-mode {mode!r}: not a mode; use respect or exceed")
    return mode


def _factor(factor: str) -> float:
    try:
        value = float(factor)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise EdgebenchError(f"--rate-factor {factor!r}: not a number above 0; e.g. 1.5")
    return value


def _world_path(world: str | Path) -> Path:
    path = Path(world)
    if not path.is_file():
        raise EdgebenchError(f"--world {world}: no such file; give a world file's path")
    return path.resolve()


def _seed(seed: int | str) -> int:
    try:
        return int(seed)
    except ValueError:
        raise EdgebenchError(f"--seed {seed!r}: not a whole number; e.g. 7") from None

"""A warm start: the deployments running when a run's window of the day begins."""

from __future__ import annotations

import math
import random
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.plan.forecast import Forecast
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule
from edgebench.warm import preload_body, running_ages, warm_body, warm_count, warms_by_default
from emulator import (
    BadRequest,
    DeployRequest,
    Distribution,
    EmulatorConfig,
    create_app,
    load_world,
)
from emulator._model import ApiModel, Preloaded, parse_preload
from geo import Position

WINDOW = Path("scenarios/launch-forecast.toml")  # the forecast's peak hour


@pytest.mark.parametrize(
    ("distribution", "mean_residual"),
    [
        # E[L^2] / (2 E[L]): what is left of a match caught at a random moment
        (Distribution.lognormal(600.0, 0.3), 600.0 * 2.718281828 ** (1.5 * 0.09) / 2),
        (Distribution.fixed(100.0), 50.0),
        (Distribution.uniform(100.0, 300.0), (300.0**3 - 100.0**3) / 3 / 200.0 / 2 / 200.0),
        (Distribution.exponential(80.0), 80.0),
    ],
)
def test_what_is_left_of_a_match_follows_the_equilibrium_distribution(distribution, mean_residual):
    rng = random.Random(4)
    draws = [distribution.residual(rng) for _ in range(40_000)]
    assert sum(draws) / len(draws) == pytest.approx(mean_residual, rel=0.02)
    assert min(draws) >= 0


def test_a_preloaded_deployment_runs_from_the_start_and_is_not_the_runs_own():
    world = load_world()
    model = ApiModel(EmulatorConfig(world=world, seed=2))
    paris = DeployRequest("my-game", "1.0.0", Position(48.86, 2.35))
    fleet = DeployRequest(
        "my-game", "1.0.0", Position(45.5, -73.6), private_host_ids=("fleet-mtl-1",)
    )
    assert model.preload([Preloaded(paris), Preloaded(fleet, 30.0)], now=0.0) == 2
    platform = model.platform
    assert platform.holding_count() == 2
    assert platform.active_by_host() == {"fleet-mtl-1": 1}  # a private host is taken too
    assert (platform.created, dict(platform.failures), dict(platform.fleet_placements)) == (
        0,
        {},
        {},
    )
    running = platform.active(0.0)
    assert {dep.status.value for dep in running} == {"Status.READY"}
    platform.advance(1e9)  # every match ends, and its slot comes back
    assert platform.holding_count() == 0


def test_a_stage_scenario_starts_warm_by_littles_law():
    scenario = load_scenario("scenarios/smoke.toml")
    schedule = Schedule.from_scenario(scenario)
    mean_s = Distribution.lognormal(720.0, 0.3).mean
    count = warm_count(schedule, scenario.rate.limit, mean_s)
    assert count == round(min(schedule.rate_at(0.0), 40) * mean_s)
    body = warm_body(scenario, mean_s, 1.0)
    assert len(body["deployments"]) == count
    assert all("age_s" not in d for d in body["deployments"])  # caught at a random moment


def test_a_window_of_a_forecast_starts_with_the_renewals_running_matches_and_their_ages():
    scenario = load_scenario(WINDOW)
    assert warms_by_default(scenario)
    forecast = Forecast.of(scenario)
    length = Distribution.lognormal(720.0, 0.3)
    count, ages = running_ages(scenario, length.mean)
    running = forecast.renewal.in_progress_at(forecast.span[0])
    assert count == round(min(running, 40 * length.mean))  # the limit lets no more through
    # On the evening's ramp the younger matches are more than in a steady state's ages.
    assert 0 < ages.mean() < 720 * math.exp(1.5 * 0.09) / 2
    body = preload_body(scenario, 300, ages[:300])
    regions = {tuple(d["centre"]) for d in body["deployments"] if d["centre"]}
    assert len(body["deployments"]) == 300
    assert len(regions) > 100  # the parties' own centres, from the regions' players
    parsed = parse_preload(orjson.loads(orjson.dumps(body)))
    assert [p.age_s for p in parsed] == pytest.approx(ages[:300].tolist(), abs=1e-3)


def test_what_is_left_of_a_match_past_its_age_is_the_length_beyond_that_age():
    rng = random.Random(5)
    lognormal = Distribution.lognormal(720.0, 0.3)
    left = [lognormal.remaining(rng, 900.0) for _ in range(20_000)]
    # E[L - a | L > a] by the lognormal's partial expectation.
    z = (math.log(900 / 720) - 0.09) / 0.3
    mean_above = lognormal.mean * 0.5 * math.erfc(z / math.sqrt(2)) / lognormal.survival(900)
    assert sum(left) / len(left) == pytest.approx(mean_above - 900, rel=0.02)
    assert min(left) >= 0
    assert Distribution.fixed(600.0).remaining(rng, 450.0) == 150.0
    assert 0 <= Distribution.uniform(100.0, 300.0).remaining(rng, 250.0) <= 50.0


def test_a_preload_age_that_is_not_a_number_is_a_400():
    body = {"application": "a", "version": "1", "deployments": [{"age_s": "old"}]}
    with pytest.raises(BadRequest, match="age_s"):
        parse_preload(body)


def test_simulate_says_whether_it_started_warm_or_empty(tmp_path):
    for flag, warm in (("--warm-start", True), ("--cold-start", False)):
        folder = tmp_path / flag
        args = ["simulate", str(WINDOW), "--duration", "3s", "--no-plots", flag]
        done = CliRunner().invoke(main, [*args, "--results-dir", str(folder)])
        assert done.exit_code in (0, 1), done.output
        started = orjson.loads((folder / "manifest.json").read_bytes())["warm_start"]
        assert (started["placed"] > 1000) is warm
        assert "platform at the start" in done.output
        assert ("warm:" in done.output) is warm


def test_the_emulator_is_preloaded_over_http_and_a_bad_body_is_a_400():
    from starlette.testclient import TestClient

    with TestClient(create_app(EmulatorConfig(seed=1))) as client:
        body = {
            "application": "my-game",
            "version": "1.0.0",
            "deployments": [{"centre": [48.86, 2.35]}, {"centre": [35.68, 139.69], "cached": True}],
        }
        answer = client.post("/_emulator/preload", json=body)
        assert answer.json() == {"requested": 2, "placed": 2}
        metrics = client.get("/_emulator/metrics").json()
        assert metrics["active_deployments"]["holding_capacity"] == 2
        assert metrics["deployments_created"] == 0
        bad = client.post("/_emulator/preload", json={**body, "deployments": [{"centre": "x"}]})
        assert bad.status_code == 400
        assert bad.json()["details"]["field"] == "deployments[0].centre"


def test_only_the_embedded_emulator_can_start_warm(tmp_path):
    done = CliRunner().invoke(
        main, ["run", "scenarios/smoke.toml", "--host", "http://127.0.0.1:9", "--warm-start"]
    )
    assert done.exit_code == 2
    assert "--warm-start: only the embedded emulator can start warm" in done.output

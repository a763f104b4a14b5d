"""Starts from the renewal equation: against closed forms, a plain numeric solution, and the
simulator's platform on a ramp and an opening wave."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from edgebench.plan.forecast import Forecast, plan
from edgebench.plan.renewal import Length, Renewal
from edgebench.plan.scenario import load_scenario, with_duration
from edgebench.plan.schedule import Schedule
from edgebench.records import REQUEST_NAMES

from .conftest import edgebench

L = 600.0  # the mean match length of the closed-form cases (s)
SHAPES = {
    # matches in progress at (time, matches): from empty each
    "ramp": ((0, 1800, 2400), (0, 8500, 8500)),
    "fall": ((0, 600, 1200, 2400), (0, 6000, 6000, 3000)),
    "wave": ((0, 60, 1200), (0, 4250, 4250)),
}


def closed_form(times, matches, t: float) -> float:
    """closed_form is (M / L + dM/dt) at t: exponential lengths' starts (M in matches)."""
    k = np.searchsorted(times, t, side="right") - 1
    slope = (matches[k + 1] - matches[k]) / (times[k + 1] - times[k])
    return np.interp(t, times, matches) / L + slope


@pytest.mark.parametrize("shape", list(SHAPES))
def test_exponential_lengths_start_m_over_l_plus_its_growth(shape):
    times, matches = SHAPES[shape]
    solution = Renewal.of(times, {"all": np.array(matches, float)}, Length("exponential", L))
    assert solution.dt == 1.0
    for t in np.arange(0.5, times[-1], 7.0):
        want = closed_form(times, matches, t)
        assert solution.rate_at(t) == pytest.approx(want, rel=2e-3, abs=2e-3), t
    grid = np.arange(len(solution.held))
    assert solution.held[:, 0] == pytest.approx(np.interp(grid, times, matches), abs=1e-6)
    assert solution.excess() == []


def plain_solution(times, matches, median: float, sigma: float, seconds: int) -> np.ndarray:
    """plain_solution solves the renewal second by second, written apart from the solver: a
    second's starts at its middle, each earlier second's still running by the survival at
    its age's middle."""

    def survival(x: float) -> float:
        return 0.5 * math.erfc(math.log(x / median) / (sigma * math.sqrt(2)))

    alive = np.array([survival(m - 0.5) for m in range(1, seconds + 1)])  # age m - 0.5
    wanted = np.interp(np.arange(seconds + 1), times, matches)
    starts = np.zeros(seconds)
    for n in range(1, seconds + 1):
        running = float(np.dot(starts[: n - 1], alive[n - 1 : 0 : -1]))
        starts[n - 1] = max(0.0, (wanted[n] - running) / alive[0])
    return starts


@pytest.mark.parametrize("shape", list(SHAPES))
def test_lognormal_lengths_agree_with_a_plain_second_by_second_solution(shape):
    times, matches = SHAPES[shape]
    solution = Renewal.of(times, {"all": np.array(matches, float)}, Length("lognormal", 720, 0.3))
    plain = plain_solution(times, matches, 720.0, 0.3, int(times[-1]))
    solved = solution.total
    assert len(solved) == len(plain)
    # Minute by minute (the plain rule's midpoint ages move single seconds by a little).
    for minute in range(len(plain) // 60):
        window = slice(60 * minute, 60 * minute + 60)
        assert solved[window].sum() == pytest.approx(plain[window].sum(), rel=0.01, abs=1.0)


def test_a_warm_forecast_starts_at_littles_law_and_stays_there():
    matches = np.array([5000.0, 5000.0])
    solution = Renewal.of((0, 3600), {"all": matches}, Length("lognormal", 720, 0.3))
    little = 5000 / Length("lognormal", 720, 0.3).mean
    assert solution.total == pytest.approx(np.full(3600, little), rel=1e-3)
    counts, ages = solution.ages_at(1800)
    assert counts.sum() == pytest.approx(5000, rel=1e-3)  # running at 30 minutes in
    mean_age = float((counts[:, 0] * (ages + 0.5)).sum() / counts.sum())
    # A match caught at a random moment has run E[L^2] / (2 E[L]) so far.
    assert mean_age == pytest.approx(720 * math.exp(1.5 * 0.09) / 2, rel=0.01)


def test_a_forecast_that_falls_faster_than_matches_end_starts_nothing_and_says_so():
    solution = Renewal.of((0, 60, 600), {"all": np.array([6000.0, 0, 0])}, Length("fixed", L))
    assert solution.total[:600].max() == 0.0  # 6,000 matches of 10 minutes leave in 1
    [(begins, ends, most)] = solution.excess()
    assert (begins, ends) == pytest.approx((0, 599), abs=1)
    assert most == pytest.approx(5400, rel=0.01)  # at 60 s: 6,000 - 600 ended, 0 wanted


def test_the_regions_are_solved_apart_and_share_the_starts_by_their_own():
    # Flat players in total, moving from west to east: west starts less than Little's law,
    # east more; the shares of the starts are not the shares of the players.
    length = Length("fixed", L)
    solution = Renewal.of(
        (0, 3600), {"west": np.array([600.0, 0.0]), "east": np.array([0.0, 600.0])}, length
    )
    west, east = solution.starts[10]
    assert west == pytest.approx(1.0 - 600 / 3600)
    assert east == pytest.approx(600 / 3600)


def test_a_day_is_solved_on_a_coarser_grid_in_well_under_a_second():
    forecast = Forecast.of(load_scenario("scenarios/launch-forecast-day.toml"))
    solution = forecast.renewal
    assert solution.dt == 5.0
    assert len(solution.names) == 3
    # The day's starts: Little's law's, plus what the day's growth asks, less its fall.
    starts = solution.total.sum() * solution.dt
    players = np.interp(np.arange(2.5, 86400, 5.0), forecast.times, forecast.ccu)
    little = forecast.matches_per_player_s * players.sum() * 5.0
    assert starts == pytest.approx(little, rel=0.03)


WORLD = """
[placement]
max_distance_km = 3000

[lifecycle]
boot_s = { distribution = "lognormal", median = 3.0, sigma = 0.25 }
cached_boot_s = { distribution = "lognormal", median = 1.5, sigma = 0.25 }
lifetime_s = { distribution = "lognormal", median = 720, sigma = 0.3 }

[[applications]]
name = "my-game"
versions = ["1.0.0"]

[[locations]]
city = "Frankfurt"
country = "DE"
latitude = 50.1109
longitude = 8.6821
capacity = 100000
"""

RAMP = """
name = "ramp"
seed = 3
[target]
application = "my-game"
version = "1.0.0"
world = "world.toml"
[players]
sizes = [10]
[rate]
mode = "exceed"
arrivals = "poisson"
[demand]
ccu = [["0m", 0], ["30m", 100000], ["45m", 100000]]
share_in_matches = 0.85
match_length = { median = "12m", sigma = 0.3 }
[[regions]]
name = "europe"
countries = ["DE"]
"""


class Collected:
    """Collected keeps a simulation's first attempts and the platform's readings."""

    def __init__(self) -> None:
        self.first: list[dict] = []
        self.readings: list[dict] = []

    def request(self, row: tuple) -> None:
        record = dict(zip(REQUEST_NAMES, row, strict=True))
        if record["attempt"] == 1:
            self.first.append(record)

    def event(self, record: dict) -> None: ...

    def reading(self, record: dict) -> None:
        self.readings.append(record)


def simulated(scenario) -> Collected:
    from edgebench.simulate.command import model_config
    from edgebench.simulate.engine import Simulation

    sink = Collected()
    Simulation(scenario, model_config(scenario, 1.0), sink, 0.0).run()
    return sink


def test_a_simulated_ramp_holds_the_forecasts_matches_and_starts_the_solutions(tmp_path):
    (tmp_path / "world.toml").write_text(WORLD)
    (tmp_path / "ramp.toml").write_text(RAMP)
    scenario = load_scenario(tmp_path / "ramp.toml")
    forecast = Forecast.of(scenario)
    sink = simulated(scenario)
    held = {round(r["t"]): r["holding_capacity"] for r in sink.readings}
    for minute in (10, 20, 30, 40):
        wanted = forecast.matches_at(minute * 60)
        assert held[minute * 60] == pytest.approx(wanted, rel=0.07), minute
    in_ramp = sum(1 for r in sink.first if r["t_sched"] < 1800)
    solution = forecast.renewal
    assert solution.total[:1800].sum() == pytest.approx(15098, rel=0.001)  # the issue's
    assert in_ramp == pytest.approx(solution.total[:1800].sum(), rel=0.05)
    first_five = sum(1 for r in sink.first if r["t_sched"] < 300) / 300
    assert first_five == pytest.approx(4.7, rel=0.1)  # Little's law said 0.9


def test_the_opening_wave_meets_the_limit_as_the_plan_says():
    scenario = with_duration(load_scenario("scenarios/launch-open.toml"), "4m")
    forecast = Forecast.of(scenario)
    sink = simulated(scenario)
    opening = sum(1 for r in sink.first if r["t_sched"] < 60)
    assert forecast.renewal.total[:60].sum() == pytest.approx(4250, rel=0.01)
    assert opening == pytest.approx(forecast.renewal.total[:60].sum(), rel=0.1)
    from edgebench.plan.queue import queue_walk

    policy = scenario.client_policy
    walk = queue_walk(Schedule.from_scenario(scenario), 40, policy.max_queue_wait_s, 120.0)
    waits = [r["queue_ms"] / 1000 for r in sink.first if r["t_sched"] < 120 and r["t_send"]]
    simulated_p99 = float(np.percentile(waits, 99))
    assert walk.opening.p99_wait_s > 30  # tens of seconds in the queue
    assert simulated_p99 == pytest.approx(walk.opening.p99_wait_s, rel=0.15)


def test_scenario_plan_tells_the_opening_and_what_opening_apart_does(tmp_path):
    together = edgebench(
        "scenario", "plan", "scenarios/launch-open.toml", "--results-dir", tmp_path
    )
    assert together.exit_code == 0, together.output
    assert "peak: 70.8 matches/s in the busiest minute, from 18:00 UTC" in together.stdout
    assert "the opening (matches due in the run's first 2 minutes): " in together.stdout
    apart = edgebench(
        "scenario",
        "plan",
        "scenarios/launch-open-staggered.toml",
        "--results-dir",
        tmp_path / "apart",
    )
    assert "above the limit (40/s): 0 s of the forecast" in apart.stdout
    result = plan(Forecast.of(load_scenario("scenarios/launch-open.toml")), 40, 40.0)
    _, _, _, wanted, held = zip(*result.curve, strict=True)
    assert held == pytest.approx(wanted, rel=1e-6, abs=1e-6)  # the starts hold the forecast
    assert result.excess == []


TWO_REGIONS_WORLD = (
    WORLD
    + """
[[locations]]
city = "Tokyo"
country = "JP"
latitude = 35.6762
longitude = 139.6503
capacity = 100000
"""
)


def test_the_report_holds_the_servers_against_the_forecast_per_region(tmp_path):
    (tmp_path / "world.toml").write_text(TWO_REGIONS_WORLD)
    forecast = "t,ccu,west,east\n0m,0,0,0\n10m,100000,80000,20000\n30m,100000,40000,60000\n"
    (tmp_path / "ccu.csv").write_text(forecast)
    text = RAMP.replace(
        'ccu = [["0m", 0], ["30m", 100000], ["45m", 100000]]', 'ccu_file = "ccu.csv"'
    )
    text = text.replace('name = "europe"\ncountries = ["DE"]', 'name = "west"\ncountries = ["DE"]')
    text += '[[regions]]\nname = "east"\ncountries = ["JP"]\n'
    (tmp_path / "two.toml").write_text(text)
    folder = tmp_path / "run"
    done = edgebench("simulate", tmp_path / "two.toml", "--results-dir", folder, "--no-plots")
    assert done.exit_code == 0, done.output
    gaps = orjson.loads((folder / "summary.json").read_bytes())["held_vs_forecast"]
    assert gaps["after_s"] == pytest.approx(720 * math.exp(0.3**2 / 2), abs=0.1)  # a mean match
    for name in ("all", "west", "east"):  # east grows while west falls: each its own
        assert abs(gaps[name]["largest_gap_share"]) < 0.07, (name, gaps[name])
    assert gaps["west"]["estimated"]
    assert not gaps["all"]["estimated"]
    assert "servers held vs the forecast's, largest gap after 13 min" in done.output

"""Demand from a launch forecast: Little's law, regions that move, a window, and the plan."""

import textwrap
from pathlib import Path

import pytest

from edgebench._errors import ScenarioError
from edgebench.plan.forecast import Forecast, plan
from edgebench.plan.payloads import PayloadPlan
from edgebench.plan.scenario import load_scenario
from edgebench.plan.schedule import Schedule

from .conftest import edgebench

BASE = """
name = "forecast"
[target]
application = "my-game"
version = "1.0.0"
[players]
sizes = [10]
[rate]
mode = "exceed"
{demand}
[[regions]]
name = "west"
countries = ["US"]
[[regions]]
name = "east"
countries = ["JP"]
"""


def scenario(tmp_path, demand: str, csv: str | None = None):
    if csv is not None:
        (tmp_path / "ccu.csv").write_text(textwrap.dedent(csv).lstrip())
    path = tmp_path / "forecast.toml"
    path.write_text(BASE.format(demand=textwrap.dedent(demand)))
    return load_scenario(path)


def test_the_rate_holds_the_matches_in_progress_ramp_and_steady_state(tmp_path):
    # 120,000 players, 90% in 10-player matches of 15 minutes (fixed): 10,800 matches held
    # at the top, Little's 12 matches/s. On the ramp (3 matches/s more each second's worth of
    # growth) the starts are M'/p + a(t - L): 3, 6, 9, 12 a quarter hour by quarter hour.
    loaded = scenario(
        tmp_path,
        """
        [demand]
        ccu = [["0m", 0], ["1h", 120000], ["2h", 120000]]
        share_in_matches = 0.9
        match_length = "15m"
        """,
    )
    schedule = Schedule.from_scenario(loaded)
    assert schedule.duration_s == 7200
    assert schedule.rate_at(5400) == pytest.approx(0.9 * 120000 / (10 * 900))
    assert [schedule.rate_at(t) for t in (450, 1350, 2250, 3150)] == pytest.approx([3, 6, 9, 12])
    assert Forecast.of(loaded).servers_per_player * 120000 == pytest.approx(10800)
    assert Forecast.of(loaded).renewal.in_progress_at(1800) == pytest.approx(5400)


def test_a_lognormal_match_length_counts_by_its_mean(tmp_path):
    loaded = scenario(
        tmp_path,
        """
        [demand]
        ccu = [["0s", 10000], ["1h", 10000]]
        match_length = { median = "10m", sigma = 0.5 }
        """,
    )
    mean = 600 * 2.718281828459045 ** (0.5**2 / 2)
    assert Schedule.from_scenario(loaded).rate_at(10) == pytest.approx(10000 / (10 * mean))


def test_a_csv_forecast_with_iso_times_moves_the_regions_over_the_day(tmp_path):
    loaded = scenario(
        tmp_path,
        """
        [demand]
        ccu_file = "ccu.csv"
        match_length = "10m"
        """,
        """
        t,ccu,west,east
        2026-12-01T00:00:00Z,6000,6000,0
        2026-12-01T01:00:00Z,6000,0,6000
        """,
    )
    assert loaded.duration_s == 3600
    plan_ = PayloadPlan(loaded)
    first = [plan_.request(k, 10.0).region for k in range(400)]
    last = {plan_.request(k, 3599.0).region for k in range(50)}
    # At the start west holds 600 matches of 10 minutes falling by 1 every 6 s: it starts
    # 1 - 1/6 a second, east the 1/6 that grows it.
    assert first.count("west") / len(first) == pytest.approx(5 / 6, abs=0.05)
    assert last == {"east"}


def test_a_window_runs_a_slice_of_the_forecast(tmp_path):
    loaded = scenario(
        tmp_path,
        """
        [demand]
        ccu = [["0h", 0], ["2h", 60000]]
        match_length = "10m"
        window = ["1h", "1h30m"]
        """,
    )
    schedule = Schedule.from_scenario(loaded)
    assert schedule.duration_s == 1800
    # Matches of exactly 10 minutes on a ramp from 0: a(t) = M'/p + a(t - L), so the starts
    # step up by M'/p (6,000 matches in 2 h) every 10 minutes: 7 steps at 1h, 9 at 1h29m.
    assert schedule.rate_at(0) == pytest.approx(7 * 6000 / 7200)
    assert schedule.rate_at(1799.9) == pytest.approx(9 * 6000 / 7200)


@pytest.mark.parametrize(
    ("csv", "says"),
    [
        ("t,ccu\n0h,10\n1h,lots\n", "ccu.csv: line 3: ccu: "),
        ("t,ccu\n0h,10\nsoon,20\n", "ccu.csv: line 3: t: "),
        ("time,players\n0h,10\n", "ccu.csv: line 1: the columns must start t,ccu"),
        ("t,ccu,north\n0h,10,10\n1h,10,10\n", "ccu.csv: line 1: column 'north' is not a region"),
        # Issue 35: a forecast read wrong is an error naming the file, the line or column.
        ("t,ccu,west\n0h,10,10\n1h,10,10\n", "ccu.csv: line 1: no column for region 'east'"),
        ("t,ccu\n0h,10\n2h,20\n1h,30\n", "ccu.csv: line 4: t: 1h is not after 2h"),
        ("t,ccu\n0h,10\n0h,20\n", "ccu.csv: line 3: t: 0h is not after 0h"),
        ("t,ccu\n", "ccu.csv: 0 rows: a forecast needs at least two"),
        ("t,ccu\n1h,10\n", "ccu.csv: 1 row: a forecast needs at least two"),
        ("t,ccu\n0h,10\n1h,-5\n", "ccu.csv: line 3: ccu: "),
        ("t,ccu,west,east\n0h,10,5,5\n1h,10,8,8\n", r"ccu.csv: line 3: west \+ east = 16 is more"),
    ],
)
def test_a_bad_forecast_file_names_the_file_line_and_field(tmp_path, csv, says):
    with pytest.raises(ScenarioError, match=says):
        scenario(tmp_path, '[demand]\nccu_file = "ccu.csv"\nmatch_length = "10m"\n', csv)


@pytest.mark.parametrize(
    ("points", "says"),
    [
        ('[["0m", 10], ["2h", 20], ["1h", 30]]', "demand.ccu: 1h is not after 2h; times must"),
        ('[["0m", 10]]', "demand.ccu: one point: a forecast needs at least two"),
    ],
)
def test_inline_forecast_points_must_move_forward_and_be_two(tmp_path, points, says):
    with pytest.raises(ScenarioError, match=says):
        scenario(tmp_path, f'[demand]\nccu = {points}\nmatch_length = "10m"\n')


def test_rounding_in_the_region_columns_is_not_an_error(tmp_path):
    csv = "t,ccu,west,east\n0h,10000,5001,5001\n1h,10000,5000,5000\n"
    loaded = scenario(tmp_path, '[demand]\nccu_file = "ccu.csv"\nmatch_length = "10m"\n', csv)
    assert loaded.demand.region_ccu["west"] == [5001, 5000]


def test_stages_or_a_forecast_one_of_the_two(tmp_path):
    both = '[demand]\nccu = [["0s", 1], ["1m", 1]]\nmatch_length = "1m"\n'
    path = tmp_path / "both.toml"
    path.write_text(
        BASE.format(demand=both).replace(
            '[rate]\nmode = "exceed"',
            '[rate]\nmode = "exceed"\nstages = [{ kind = "hold", duration = "1m", rate = 1 }]',
        )
    )
    with pytest.raises(ScenarioError, match=r"give one of \[rate\] stages, a \[demand\] forecast"):
        load_scenario(path)


def test_the_plan_finds_the_wave_its_echo_the_time_above_the_limit_and_the_queue(tmp_path):
    # 120,000 players in 10-player matches of 10 minutes (fixed): 20 starts/s. 180,000 more
    # join in 100 s: 180 starts/s more, 200/s for 100 s, and the wave comes back a match
    # length later. A FIFO queue in front of 40/s grows by 160/s to 16,000, drains at 20/s
    # to 6,000, then grows again by the echo's 16,000.
    loaded = scenario(
        tmp_path,
        """
        [demand]
        ccu = [["0s", 120000], ["1000s", 120000], ["1100s", 300000], ["1700s", 300000]]
        match_length = "10m"
        """,
    )
    result = plan(Forecast.of(loaded), 40, 40.0)
    assert result.peak_rate == pytest.approx(200)
    assert result.peak_at_s in (1020, 1080, 1620, 1680)  # a whole minute of the wave
    assert result.above_limit_s == pytest.approx(200)  # the wave and its echo
    waiting = dict(result.queue)
    assert waiting[1100.0] == pytest.approx(16000, rel=0.001)
    assert waiting[1600.0] == pytest.approx(6000, rel=0.001)
    assert result.queue_peak == pytest.approx(6000 + 16000, rel=0.001)  # the echo joins it
    assert result.queue_peak_at_s == pytest.approx(1700, abs=1)
    assert result.queue_wait_peak_s == pytest.approx(550, rel=0.001)
    assert result.excess == []


def test_a_forecast_that_falls_faster_than_matches_end_is_named(tmp_path):
    # 60,000 players leave in one minute; 10-minute matches cannot end that fast: no starts
    # until the matches held fall to the forecast's, and up to 6,000 servers more meanwhile.
    loaded = scenario(
        tmp_path,
        """
        [demand]
        ccu = [["0s", 60000], ["600s", 60000], ["660s", 0], ["1800s", 0]]
        match_length = "10m"
        """,
    )
    forecast = Forecast.of(loaded)
    assert forecast.rate_at(300) == pytest.approx(10)
    assert forecast.rate_at(700) == 0.0
    [(begins, ends, most)] = plan(forecast, 40, 40.0).excess
    assert begins == pytest.approx(600, abs=2)
    assert ends == pytest.approx(1200, abs=2)  # the last matches of the steady state end
    assert most == pytest.approx(6000 * 0.9, rel=0.01)  # at 660 s, 60 s of them have ended
    planned = edgebench("scenario", "plan", tmp_path / "forecast.toml", "--results-dir", tmp_path)
    assert "the forecast cannot be held: players leave faster than matches end" in planned.stdout


def test_scenario_plan_prints_the_table_and_draws_the_plot(tmp_path):
    done = edgebench(
        "scenario", "plan", "scenarios/launch-forecast.toml", "--results-dir", tmp_path
    )
    assert done.exit_code == 0, done.output
    assert "peak: 57.8 matches/s in the busiest minute, from 18:59:00" in done.stdout
    assert "above the limit" in done.stdout
    assert "servers americas" in done.stdout
    assert (tmp_path / "plan.png").stat().st_size > 1000
    assert (tmp_path / "plan.svg").exists()
    stages_only = edgebench("scenario", "plan", "scenarios/smoke.toml", "--results-dir", tmp_path)
    assert stages_only.exit_code == 0  # a scenario of stages is planned too, without a plot
    assert "smoke: 40 s of [rate] stages x 1, respect mode" in stages_only.stdout


def test_the_inputs_digest_covers_the_forecast_file_too(tmp_path):
    demand = '[demand]\nccu_file = "ccu.csv"\nmatch_length = "10m"\n'
    first = scenario(tmp_path, demand, "t,ccu\n0h,6000\n1h,6000\n")
    again = scenario(tmp_path, demand, "t,ccu\n0h,6000\n1h,6000\n")
    changed = scenario(tmp_path, demand, "t,ccu\n0h,6000\n1h,9000\n")
    assert first.inputs_digest == again.inputs_digest != changed.inputs_digest
    assert first.digest == changed.digest  # the scenario file itself is the same
    assert first.inputs_digest != first.digest


def test_the_scenarios_match_length_is_how_long_the_platform_holds_a_server(tmp_path):
    from edgebench._emulator_cli import emulator_config
    from edgebench.plan.overrides import RunSpec
    from edgebench.platform import scenario_warnings
    from edgebench.simulate.command import model_config
    from emulator import Distribution

    demand = """
    [demand]
    ccu = [[0, 1000], [600, 1000]]
    match_length = { median = "25m", sigma = 0.3 }
    """
    forecast = scenario(tmp_path, demand)
    wanted = Distribution.lognormal(1500.0, 0.3)
    assert model_config(forecast, 1.0).world.lifecycle.lifetime_s == wanted  # simulated
    spec = RunSpec(forecast.source).dumps()  # the embedded emulator's, from `edgebench run`
    config = emulator_config(None, 40, 20, False, 1.0, 0, None, 0.0, 0.0, 0.0, 0.0, None, spec)
    assert config.world.lifecycle.lifetime_s == wanted
    [said] = scenario_warnings(forecast)  # the shipped world holds servers 15 minutes
    assert "default-world.toml: lifecycle.lifetime_s (lognormal, median 900" in said
    assert "demand.match_length (lognormal, median 1500, sigma 0.3)" in said


def test_a_bare_match_length_of_a_few_seconds_is_warned_about(tmp_path):
    forecast = scenario(tmp_path, "[demand]\nccu = [[0, 100], [60, 100]]\nmatch_length = 25\n")
    assert forecast.demand.mean_match_length_s == 25  # read as seconds, as documented
    assert any(
        'demand.match_length: 25 is read as 25 seconds; write "25m"' in w for w in forecast.warnings
    )
    checked = edgebench("scenario", "check", tmp_path / "forecast.toml")
    assert 'write "25m" if minutes were meant' in checked.stdout


def simulated_queue(scenario) -> tuple[int, float]:
    """simulated_queue is a simulation's most matches waiting for the limiter at once, and the
    longest wait of a sent one."""
    from edgebench.records import REQUEST_NAMES
    from edgebench.simulate.command import model_config
    from edgebench.simulate.engine import Simulation, Sink

    class Waits(Sink):
        def __init__(self) -> None:
            self.moves: list[tuple[float, int]] = []
            self.longest = 0.0

        def request(self, row: tuple) -> None:
            record = dict(zip(REQUEST_NAMES, row, strict=True))
            waited = record["queue_ms"]
            if waited and record["t_send"] is not None:
                self.moves += [(record["t_send"] - waited / 1000, 1), (record["t_send"], -1)]
                self.longest = max(self.longest, waited / 1000)

    sink = Waits()
    Simulation(scenario, model_config(scenario, 1.0), sink, 0.0).run()
    now = peak = 0
    for _, move in sorted(sink.moves):
        now += move
        peak = max(peak, now)
    return peak, sink.longest


@pytest.mark.parametrize(
    ("path", "duration"),
    [("scenarios/matchmaker-tick.toml", None), ("scenarios/launch-forecast.toml", "5m")],
)
def test_the_plans_queue_is_what_a_simulation_of_the_scenario_queues(path, duration):
    from edgebench.plan.queue import queue_walk
    from edgebench.plan.scenario import with_duration

    scenario = load_scenario(path)
    scenario = with_duration(scenario, duration) if duration else scenario
    policy = scenario.client_policy
    quota, wait = scenario.rate.limit, policy.max_queue_wait_s if policy else None
    walk = queue_walk(Schedule.from_scenario(scenario), quota, wait) if scenario.queues else None
    peak, longest = simulated_queue(scenario)
    if walk is None:  # no client queue: respect mode's schedule holds the limit itself
        assert peak < 5
        return
    assert walk.peak_waiting > 80  # a 5 s tick's batch, far more than a second's sends
    assert walk.peak_waiting == pytest.approx(peak, rel=0.1)
    assert walk.longest_wait_s == pytest.approx(longest, rel=0.1)


def test_the_plan_follows_the_rate_factor_and_plans_stages_too(tmp_path):
    times_four = tmp_path / "four.toml"
    text = Path("scenarios/launch-forecast.toml").read_text()
    times_four.write_text(
        text.replace('ccu_file = "forecasts/', 'ccu_file = "SCEN/forecasts/')
        .replace("SCEN", str(Path("scenarios").resolve()))
        .replace('mode = "respect"', 'mode = "respect"\nfactor = 4')
    )
    planned = edgebench("scenario", "plan", times_four, "--results-dir", tmp_path / "plot")
    assert "peak: 231.4 matches/s" in planned.stdout  # 57.8/s at the peak, times 4
    staged = edgebench("scenario", "plan", "scenarios/matchmaker-tick.toml")
    assert staged.exit_code == 0
    assert "at most 121 matches waiting" in staged.stdout


ISO_FORECAST = """
[demand]
ccu = [
    ["2026-12-05T10:00:00Z", 1000], ["2026-12-05T20:00:00Z", 30000], ["2026-12-06T02:00:00Z", 500],
]
match_length = "12m"
window = ["9h", "10h"]
"""


def test_a_forecast_of_iso_times_is_planned_and_reported_in_clock_time(tmp_path):
    from datetime import datetime

    from analysis import plots
    from edgebench.manifest import scenario_facts

    forecast = scenario(tmp_path, ISO_FORECAST)
    planned = edgebench(
        "scenario", "plan", tmp_path / "forecast.toml", "--results-dir", tmp_path / "p"
    )
    # The busiest minute is the ramp's last 12-minute step (not "from 9:48:00", time from
    # the start).
    assert "busiest minute, from 19:48 UTC" in planned.stdout
    assert "a run covers 19:00 UTC to 20:00 UTC" in planned.stdout
    paris = edgebench("scenario", "plan", tmp_path / "forecast.toml", "--tz", "Europe/Paris")
    assert "from 20:48 CET" in paris.stdout
    bad = edgebench("scenario", "plan", tmp_path / "forecast.toml", "--tz", "Mars/Olympus")
    assert bad.exit_code == 2
    facts = scenario_facts(forecast, Schedule.from_scenario(forecast))["scenario"]
    assert facts["clock_start_utc"] == "2026-12-05T19:00:00+00:00"  # the window's start
    figure, axes = plots.new_figure(6, 3)
    axes.plot([0, 3600], [1, 2])
    axes.set_xlabel("time since first start (s)")
    with plots.clock_time(datetime.fromisoformat(facts["clock_start_utc"])):
        plots.save(figure, tmp_path, "over-time")
    assert axes.get_xlabel() == "clock time (UTC)"
    assert axes.xaxis.get_major_formatter()(1800, 0) == "19:30"


def test_the_plans_plot_draws_the_queue_its_text_tells_in_the_texts_time():
    from edgebench._scenario_cli import plan_text

    text, result, _ = plan_text(Path("scenarios/launch-open.toml"))
    peak = max(n for _, n in result.queue)
    # One queue: the client's, walked over the run's arrivals, told in clock time.
    assert f"at most {peak:,.0f} matches waiting (at 18:00 UTC)" in text
    assert result.queue_title.startswith("the client's queue: matches waiting (40 sends")
    capped, plan_, _ = plan_text(Path("scenarios/launch-forecast.toml"))
    assert "no client queue: respect mode caps the run" in capped
    assert plan_.queue_title.startswith("starts the cap (39.4/s) leaves out")
    staged, _, _ = plan_text(Path("scenarios/matchmaker-tick.toml"))
    assert "matches waiting (at 0:00:" in staged
    assert "into the run)" in staged  # no clock: time from the run's start, said so

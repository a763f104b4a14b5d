import itertools
import math
from collections import Counter
from pathlib import Path

import pytest

from edgebench.plan.scenario import load_scenario, with_duration
from edgebench.plan.schedule import Schedule, build_segments


def schedule(stages, duration=None, limit=None, margin_s=0.0):
    total = duration or sum(length for _, length, _ in stages)
    cap = limit if limit is not None else math.inf
    return Schedule(build_segments(stages, total, cap), total, limit, margin_s)


def most_in_any_window(times, window=1.0):
    return max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))


def test_a_constant_rate_gives_exact_counts_in_every_second():
    times = [a.due_s for a in schedule([("hold", 10, 40)]).arrivals()]
    assert len(times) == 400
    assert times[0] == pytest.approx(0.0125)
    assert all(sum(1 for t in times if s <= t < s + 1) == 40 for s in range(10))
    assert most_in_any_window(times) == 40


def test_a_ramp_follows_the_integral_of_the_rate():
    arrivals = list(schedule([("ramp", 10, 10)]).arrivals())
    assert len(arrivals) == 50  # the area under 0 -> 10/s over 10 s
    # N(t) = t**2 / 2, so arrival k is due at sqrt(2 (k + 0.5)).
    assert [a.due_s for a in arrivals[:3]] == pytest.approx([1.0, math.sqrt(3), math.sqrt(5)])
    assert arrivals[-1].offered_rate == pytest.approx(arrivals[-1].due_s, rel=1e-9)


def test_stage_boundaries_and_a_spike_that_returns_to_the_level_before_it():
    plan = schedule([("hold", 2, 5), ("spike", 1, 30), ("ramp", 2, 15), ("step", 1, 2)])
    by_stage = {}
    for arrival in plan.arrivals():
        by_stage[arrival.stage] = by_stage.get(arrival.stage, 0) + 1
    assert by_stage == {0: 10, 1: 30, 2: 20, 3: 2}  # the ramp starts from 5, not from 30
    assert plan.rate_at(2.5) == 30
    assert plan.rate_at(3.0) == 5
    assert plan.rate_at(4.0) == 10


def test_a_longer_duration_holds_the_last_level_and_a_shorter_one_cuts():
    assert len(list(schedule([("ramp", 2, 10)], duration=4).arrivals())) == 10 + 20
    assert len(list(schedule([("hold", 10, 10)], duration=3).arrivals())) == 30


def test_respect_mode_caps_the_rate_and_keeps_every_window_under_the_limit():
    plan = schedule([("hold", 20, 60)], limit=40, margin_s=0.015)
    times = [a.due_s for a in plan.arrivals()]
    assert most_in_any_window(times, 1.015) == 40
    assert len(times) / 20 >= 39
    assert max(a.offered_rate for a in plan.arrivals()) == 40


def test_respect_mode_holds_even_when_rates_bunch_up_at_a_stage_boundary():
    plan = schedule([("hold", 1, 39), ("spike", 1, 80), ("hold", 1, 39)], limit=40, margin_s=0.01)
    assert most_in_any_window([a.due_s for a in plan.arrivals()], 1.01) <= 40


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_workers_share_the_arrivals_exactly(workers):
    plan = schedule([("ramp", 5, 40), ("hold", 5, 40)], limit=40, margin_s=0.015)
    everything = list(plan.arrivals())
    shares = [list(plan.arrivals(i, workers)) for i in range(workers)]
    assert sorted((a for s in shares for a in s), key=lambda a: a.index) == everything
    owners = {a.index: i for i, share in enumerate(shares) for a in share}
    quotas = [plan.quota(i, workers) for i in range(workers)]
    assert sum(quotas) == 40
    # Any 40 consecutive arrivals hold exactly each worker's quota: a worker that keeps
    # its own sends within its quota per window keeps the sum within the limit.
    for start in range(len(everything) - 40):
        window = Counter(owners[k] for k in range(start, start + 40))
        assert [window[i] for i in range(workers)] == quotas


def test_exceed_mode_shares_round_robin():
    plan = schedule([("hold", 2, 30)])
    assert [a.index for a in plan.arrivals(1, 3)][:4] == [1, 4, 7, 10]
    assert plan.quota(1, 3) is None


def test_exceed_mode_from_a_scenario_offers_factor_times_the_rate(tmp_path):
    from edgebench.plan.scenario import load_scenario

    path = tmp_path / "x.toml"
    path.write_text(
        'name = "x"\n[target]\napplication = "a"\nversion = "v"\n'
        '[rate]\nmode = "exceed"\nfactor = 1.5\n'
        'stages = [{kind = "hold", duration = "10s", rate = 40}]\n'
        '[[regions]]\nname = "r"\ncountries = ["BR"]\n'
    )
    plan = Schedule.from_scenario(load_scenario(path))
    assert len(list(plan.arrivals())) == 600
    assert plan.limit is None


@pytest.mark.parametrize(
    "path",
    [
        "bench/simulate-day.toml",  # Poisson arrivals over a forecast's pieces
        "scenarios/matchmaker-tick.toml",  # tick releases
        "bench/agreement.toml",  # even arrivals over a ramp
        "scenarios/launch-forecast.toml",  # respect mode's guard: taken from the schedule
    ],
)
def test_arrivals_worked_out_in_blocks_are_the_schedules_own(path):
    scenario = load_scenario(Path(path))
    want = list(itertools.islice(Schedule.from_scenario(scenario).arrivals(), 20_000))
    blocks = Schedule.from_scenario(scenario).arrival_blocks(4096)
    assert list(itertools.islice(itertools.chain.from_iterable(blocks), 20_000)) == want


@pytest.mark.parametrize(
    "path",
    [
        "scenarios/matchmaker-tick.toml",  # counted in numpy's blocks
        "bench/agreement.toml",
        "scenarios/respect-limit.toml",  # the limit held one by one: counted so
    ],
)
def test_the_count_is_every_arrival_the_schedule_makes(path):
    scenario = with_duration(load_scenario(Path(path)), "2m")
    assert Schedule.from_scenario(scenario).count() == sum(
        1 for _ in Schedule.from_scenario(scenario).arrivals()
    )


def test_due_blocks_are_the_arrivals_due_times_in_bulk():
    import numpy as np

    from edgebench.plan.queue import _per_window

    stages = [("ramp", 30, 80), ("hold", 20, 80), ("spike", 5, 300)]
    for plan in (schedule(stages), schedule(stages, limit=40, margin_s=0.015)):  # blocks, not
        due = [a.due_s for block in plan.arrival_blocks(500) for a in block]
        assert np.concatenate(list(plan.due_blocks(500))).tolist() == due
        counts = [0] * (math.floor(max(due)) + 1)
        for t in due:
            counts[math.floor(t / 1.0 + 1e-9)] += 1
        assert _per_window(plan) == counts  # the limit's windows: a second each
